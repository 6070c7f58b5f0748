//! The built-in suite: the files of `scenarios/`, compiled into the binary so that
//! `guestwire test` runs the same suite from any directory.

use super::load::{LoadError, LoadedScenario, check_unique, parse};

/// `(file name, contents)` of each listed `scenarios/NAME.toml`.
macro_rules! scenario_files {
    ($($name:literal),* $(,)?) => {
        &[$((
            concat!($name, ".toml"),
            include_str!(concat!("../../scenarios/", $name, ".toml")),
        )),*]
    };
}

/// `(file name, contents)` of every built-in scenario file.
pub const FILES: &[(&str, &str)] = scenario_files![
    "quantix-serial",
    "quantix-faults",
    "malformed-matrix",
    "quantix-host",
    "serial-port",
    "fcexec-hvsock",
    "hybrid-handshake",
    "volant-vsock",
    "ch-api",
    "qga-serial",
];

/// Loads the built-in suite (file names as `scenarios/NAME.toml`).
pub fn load() -> Result<Vec<LoadedScenario>, LoadError> {
    let mut all = Vec::new();
    for (name, text) in FILES {
        all.extend(parse(&format!("scenarios/{name}"), text)?);
    }
    check_unique(&all)?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_scenarios_is_built_in_and_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("scenarios/")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "list every scenarios/*.toml in builtin::FILES"
        );
        let all = load().expect("the built-in suite loads");
        assert!(!all.is_empty());
    }
}
