//! The `guestwire` binary: see `guestwire --help`.

fn main() -> std::process::ExitCode {
    guestwire::cli::main()
}
