//! The relay's `--config` file (`relay/src/config/file.rs`): any file content is loaded without a
//! panic, and an error names the file. What loads gives settings the relay can start with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use live_relay::config::file::load;
use live_relay::Settings;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One file per fuzzing process, rewritten for each input (the loader reads a path).
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("live-relay-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir.join("relay.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("the temporary file is writable");
    let args = ["live-relay".as_ref(), "--config".as_ref(), path.as_os_str()];
    match load(args) {
        Ok(config) => {
            let _ = config.check();
            let _ = config.shutdown_grace();
            let _ = config.ping_interval();
            let _ = Settings::from_config(&config);
            let _ = live_relay::ws::transport_limit(config.max_frame_bytes);
            let _ = config.history_limits();
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
        }
    }
});
