//! The effects the core asks for, carried out with deadlines: hooks, and snapshot file IO on
//! the blocking pool.

use std::path::Path;
use std::time::Duration;

use super::Shared;
use crate::vmm::chapi::api::{Effect, EffectFailure};
use crate::vmm::chapi::snapshot::{CONFIG_FILE, MAX_SNAPSHOT_FILE, STATE_FILE, SnapshotFiles};
/// Carries out `effects` in order, stopping at the first failure.
pub(super) async fn perform(
    effects: Vec<Effect>,
    shared: &Shared,
) -> Result<Option<SnapshotFiles>, EffectFailure> {
    let cfg = &shared.config;
    let mut read = None;
    for effect in effects {
        match effect {
            Effect::Notify(event) => {
                match tokio::time::timeout(cfg.hook_timeout, shared.hooks.on_event(&event)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(message)) => return Err(EffectFailure::new(message)),
                    Err(_) => {
                        return Err(EffectFailure::new(format!(
                            "the {} hook did not answer within {} ms",
                            event.name(),
                            cfg.hook_timeout.as_millis()
                        )));
                    }
                }
            }
            Effect::WriteSnapshot { dir, files } => {
                blocking(cfg.io_timeout, move || write_snapshot(&dir, &files)).await?;
            }
            Effect::ReadSnapshot { dir } => {
                read = Some(blocking(cfg.io_timeout, move || read_snapshot(&dir)).await?);
            }
        }
    }
    Ok(read)
}

async fn blocking<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, EffectFailure> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(message))) => Err(EffectFailure::new(message)),
        Ok(Err(join)) => Err(EffectFailure::new(format!("snapshot IO failed: {join}"))),
        Err(_) => Err(EffectFailure::new(format!(
            "snapshot IO did not finish within {} ms",
            timeout.as_millis()
        ))),
    }
}

fn write_snapshot(dir: &Path, files: &SnapshotFiles) -> Result<(), String> {
    if !dir.is_dir() {
        return Err("Destination is not a directory".into());
    }
    for (name, bytes) in [(CONFIG_FILE, &files.config), (STATE_FILE, &files.state)] {
        std::fs::write(dir.join(name), bytes).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > MAX_SNAPSHOT_FILE {
        return Err(format!(
            "{} is {len} bytes, more than the {MAX_SNAPSHOT_FILE} a snapshot file may have",
            path.display()
        ));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_SNAPSHOT_FILE + 1),
        &mut bytes,
    )
    .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_SNAPSHOT_FILE {
        return Err(format!("{} grew while being read", path.display()));
    }
    Ok(bytes)
}

fn read_snapshot(dir: &Path) -> Result<SnapshotFiles, String> {
    Ok(SnapshotFiles {
        config: read_bounded(&dir.join(CONFIG_FILE))?,
        state: read_bounded(&dir.join(STATE_FILE))?,
    })
}
