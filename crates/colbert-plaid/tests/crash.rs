#![allow(clippy::unwrap_used)]
//! Crash safety: a child process (this test binary re-invoked with `PLAID_CRASH_DIR` set)
//! commits adds and deletes in a loop and is SIGKILLed at random moments. After every kill the
//! index must open to a committed state: every transaction the child logged as done is fully
//! present, and the one in flight is either fully applied or not at all.
mod common;
use colbert_plaid::*;
use common::*;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const DIM: usize = 16;

fn log_line(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
    f.write_all(b"\n").unwrap();
    f.sync_all().unwrap();
}

/// The child's writer loop (does nothing unless started by `crash_recovery`).
#[test]
#[ignore]
fn crash_child() {
    let Ok(dir) = std::env::var("PLAID_CRASH_DIR") else {
        return;
    };
    let log = std::path::PathBuf::from(std::env::var("PLAID_CRASH_LOG").unwrap());
    let seed: u64 = std::env::var("PLAID_CRASH_SEED").unwrap().parse().unwrap();
    let idx = PlaidIndex::open(Path::new(&dir)).unwrap();
    let mut rng = Rng::new(seed);
    let mut mine: Vec<String> = vec![];
    for i in 0.. {
        let mut w = idx.writer().unwrap();
        let n = 1 + rng.below(6);
        let adds: Vec<String> = (0..n).map(|j| format!("s{seed}-{i}-{j}")).collect();
        let items: Vec<Vec<f32>> = (0..n)
            .map(|_| {
                let t = 3 + rng.below(10);
                let mut v: Vec<f32> = (0..t * DIM).map(|_| rng.gauss()).collect();
                v.chunks_mut(DIM).for_each(normalize);
                v
            })
            .collect();
        let e = Embeddings::from_items(DIM, items);
        w.push(adds.clone(), e.view()).unwrap();
        let mut dels = vec![];
        if mine.len() > 4 && rng.below(2) == 0 {
            for _ in 0..2 {
                let k = rng.below(mine.len());
                dels.push(mine.swap_remove(k));
            }
        }
        w.delete(&dels).unwrap();
        log_line(
            &log,
            &format!("BEGIN {} {}", adds.join(","), dels.join(",")),
        );
        w.commit(&CancelToken::new(), &|_| {}).unwrap();
        log_line(&log, "DONE");
        mine.extend(adds);
    }
}

/// Child for `lock_is_cross_process`: holds the writer until killed.
#[test]
#[ignore]
fn lock_child() {
    let Ok(dir) = std::env::var("PLAID_LOCK_DIR") else {
        return;
    };
    let idx = PlaidIndex::open(Path::new(&dir)).unwrap();
    let _w = idx.writer().unwrap();
    log_line(&Path::new(&dir).with_extension("held"), "HELD");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn lock_is_cross_process() {
    let t = TempDir::new("xlock");
    let c = Corpus::new(3, 20, DIM, 3, 8);
    let idx = build_index(
        t.path(),
        IndexOptions {
            num_centroids: Some(4),
            ..Default::default()
        },
        c.ids.clone(),
        c.docs.view(),
    );
    let held = t.path().with_extension("held");
    let _ = std::fs::remove_file(&held);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PLAID_LOCK_DIR", t.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !held.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "child never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(idx.writer().unwrap_err().code(), "INDEX_LOCKED");
    assert_eq!(idx.delete(&c.ids[..1]).unwrap_err().code(), "INDEX_LOCKED");
    // Readers never wait for the writer.
    let q = c.queries(1, 2, 4);
    assert_eq!(
        idx.search(q.view(), &SearchParams::new(3), None, &no_cancel())
            .unwrap()
            .len(),
        2
    );
    assert!(PlaidIndex::open(t.path()).is_ok());
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&held);
    assert_eq!(idx.delete(&c.ids[..1]).unwrap(), 1);
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn crash_recovery() {
    let trials: usize = std::env::var("PLAID_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let t = TempDir::new("crash");
    PlaidIndex::create(
        t.path(),
        IndexOptions {
            nbits: 2,
            num_centroids: Some(8),
            ..Default::default()
        },
        false,
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(2024);
    let mut live: HashSet<String> = HashSet::new();
    let mut universe: HashSet<String> = HashSet::new();
    let mut in_flight_applied = 0;
    let mut commits = 0;
    for trial in 0..trials {
        let log = t.path().with_extension(format!("log{trial}"));
        let mut child = std::process::Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PLAID_CRASH_DIR", t.path())
            .env("PLAID_CRASH_LOG", &log)
            .env("PLAID_CRASH_SEED", trial.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + rng.below(400) as u64));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let mut pending: Option<(Vec<String>, Vec<String>)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("BEGIN ") {
                let (a, d) = rest.split_once(' ').unwrap_or((rest, ""));
                pending = Some((split(a), split(d)));
            } else if line == "DONE" {
                let (a, d) = pending.take().unwrap();
                universe.extend(a.iter().cloned());
                live.extend(a);
                for x in d {
                    live.remove(&x);
                }
                commits += 1;
            }
        }
        let idx = PlaidIndex::open(t.path()).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        if let Some((a, d)) = pending {
            // The transaction in flight: all or nothing.
            let present = a.iter().filter(|x| idx.contains(x).unwrap()).count();
            assert!(
                present == 0 || present == a.len(),
                "trial {trial}: half-applied adds"
            );
            universe.extend(a.iter().cloned());
            if present > 0 {
                in_flight_applied += 1;
                live.extend(a);
                for x in &d {
                    live.remove(x);
                }
            }
        }
        for id in &universe {
            assert_eq!(
                idx.contains(id).unwrap(),
                live.contains(id),
                "trial {trial}: {id}"
            );
        }
        let info = idx.info().unwrap();
        assert_eq!(info.documents as usize, live.len(), "trial {trial}");
        if !live.is_empty() {
            let all: Vec<String> = live.iter().cloned().collect();
            let r = idx.reconstruct(&all).unwrap();
            assert_eq!(r.len(), all.len());
            let q = Embeddings::from_items(DIM, vec![r.item(0).to_vec()]);
            let hits = idx
                .search(q.view(), &SearchParams::new(3), None, &no_cancel())
                .unwrap();
            assert!(!hits[0].is_empty());
        }
        // Open collected leftovers: only the manifest, the lock and referenced files remain.
        let files = std::fs::read_dir(t.path()).unwrap().count();
        assert_eq!(
            files,
            2 + info.segments + usize::from(info.dim.is_some()) + usize::from(info.deleted > 0),
            "trial {trial}"
        );
    }
    eprintln!("{trials} kills, {commits} logged commits, {in_flight_applied} in-flight commits found applied");
    assert!(commits > 10, "the child should have committed many times");
}
