//! A fault list that can change while a channel runs: each new connection takes the list as it
//! is at that moment (the scenario runner's `faults = [...]` step, a TUI toggle).

use std::sync::{Arc, Mutex, PoisonError};

use super::FaultSpec;

/// A shared, replaceable list of stream and frame faults.
#[derive(Debug, Clone, Default)]
pub struct LiveFaults(Arc<Mutex<Vec<FaultSpec>>>);

impl LiveFaults {
    /// A list holding `faults`.
    pub fn new(faults: Vec<FaultSpec>) -> Self {
        Self(Arc::new(Mutex::new(faults)))
    }

    /// The faults now.
    pub fn get(&self) -> Vec<FaultSpec> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the faults; connections made from now on use the new list.
    pub fn set(&self, faults: Vec<FaultSpec>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_list() {
        let a = LiveFaults::new(vec!["drop_frame".parse().expect("spec")]);
        let b = a.clone();
        b.set(Vec::new());
        assert!(a.get().is_empty());
    }
}
