//! The scan source against real Unix sockets in a tempdir (passive: nothing connects to them
//! but the test's own client).

use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use guestwire_tui::sources::Source;
use guestwire_tui::sources::scan::{ScanSource, targets_of};
use guestwire_tui::store::Store;

#[test]
fn scan_shows_a_listener_its_connection_and_the_holder() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let _client = UnixStream::connect(&path).expect("connect");
    let (_server, _) = listener.accept().expect("accept");
    let mut src = ScanSource::start(targets_of(dir.path().to_str().expect("utf8")), "tmp");
    let mut store = Store::new(10, src.label());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = Vec::new();
    while store.sockets().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no sample; notices {:?}",
            store.notices()
        );
        src.poll(0, 10, &mut buf);
        for e in buf.drain(..) {
            store.ingest(e);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rows = store.sockets();
    let shown = path.display().to_string();
    let main = rows.iter().find(|r| r.path == shown).expect("listener row");
    assert_eq!(main.state, "LISTEN", "{rows:?}");
    let me = format!("{}/", std::process::id());
    assert!(main.peers.iter().any(|p| p.starts_with(&me)), "{rows:?}");
    assert_eq!(main.history.len(), 1);
    assert!(
        rows.iter().any(|r| r.path == format!("{shown} #1")),
        "{rows:?}"
    );
}
