//! `fixedip-moto [PORT]`: the local AWS emulator in the foreground, started exactly as the tests start
//! it (same settings, Lambda without Docker), on 127.0.0.1:PORT (default 5000; 0 picks a free
//! port). Prints the endpoint URL on stdout once moto answers, then moto's log on stderr; Ctrl-C
//! stops both. `scripts/emulator.sh start` and `scripts/run-local.sh` run it.

use std::process::ExitCode;

use fixedip_moto::{Moto, Options};

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).as_deref() {
        None => 5000,
        Some(port) => match port.parse() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("usage: fixedip-moto [PORT]   (`{port}` is not a port number)");
                return ExitCode::from(2);
            }
        },
    };
    let mut moto = match Moto::start_with(Options { port, echo: true }) {
        Ok(moto) => moto,
        Err(e) => {
            eprintln!("fixedip-moto: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "fixedip-moto: moto ready on {url} (AWS_ENDPOINT_URL={url})",
        url = moto.url()
    );
    println!("{}", moto.url());
    match moto.wait() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
