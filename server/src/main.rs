use std::process::ExitCode;

fn main() -> ExitCode {
    orgsync::cli::main()
}
