//! Replays every committed fuzz corpus file (`fixtures/corpus/*/*`) and every crash reproducer
//! (`fixtures/crashes/*`) through every byte-oriented `guestwire::fuzzing` entry, so the
//! ordinary test run checks the fuzz invariants on them without libFuzzer.

use std::fs;
use std::path::{Path, PathBuf};

use guestwire::fuzzing::BYTE_TARGETS;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.extension().is_none_or(|e| e != "md") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_and_crash_file_passes_every_entry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let corpus = files_under(&root.join("corpus"));
    let crashes = files_under(&root.join("crashes"));
    assert!(corpus.len() > 100, "the seed corpus is missing");
    for path in corpus.iter().chain(&crashes) {
        let data = fs::read(path).expect("read a corpus file");
        for (name, entry) in BYTE_TARGETS {
            let run = std::panic::catch_unwind(|| entry(&data));
            assert!(run.is_ok(), "{name} failed on {}", path.display());
        }
    }
}

#[test]
fn every_fuzz_target_has_its_seed_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus");
    for (name, _) in BYTE_TARGETS {
        let dir = root.join(name);
        assert!(
            files_under(&dir).len() >= 5,
            "fixtures/corpus/{name} has too few seeds: run `cargo run --example fuzz_seeds`"
        );
    }
}
