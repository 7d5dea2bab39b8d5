//! Concurrency (issue 8): many lifecycles at once, verbs racing each other and the
//! container's own exit. berth serialises verbs per container with a flock on its state
//! directory (never a global lock); these tests check that nothing is lost, doubled, left
//! behind or left a zombie.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// Waits (up to 10 s) until `state` says stopped or the container is gone.
fn wait_stopped(env: &Env, id: &str) {
    let start = Instant::now();
    loop {
        let o = env.berth(&["state", id]);
        if o.code != 0 || o.stdout.contains("\"stopped\"") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{id} did not stop"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `n` copies of `f` at the same instant, returning their results in order.
fn at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (b, f) = (&barrier, &f);
                s.spawn(move || {
                    b.wait();
                    f(i)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn two_hundred_lifecycles_over_eight_workers() {
    let env = Env::new(&["true"]);
    env.write_config();
    let bundle = env.bundle.to_str().unwrap();
    let started = Instant::now();
    at_once(8, |w| {
        for _ in 0..25 {
            let id = env.id();
            env.berth(&["create", "--bundle", bundle, &id]).ok();
            let st: Value = serde_json::from_str(&env.berth(&["state", &id]).ok().stdout)
                .unwrap_or_else(|e| panic!("worker {w}: state of {id}: {e}"));
            assert_eq!(st["status"], "created", "worker {w}: {st}");
            env.berth(&["start", &id]).ok();
            wait_stopped(&env, &id);
            env.berth(&["delete", &id]).ok();
            env.assert_clean(&id);
        }
    });
    eprintln!("200 lifecycles over 8 workers: {:?}", started.elapsed());
    let l = env.berth(&["list", "-q"]);
    assert_eq!(l.ok().stdout, "", "containers left in the root");
    assert_no_fds_into(env.tmp.path());
    assert_no_zombie_children();
}

#[test]
fn simultaneous_creates_of_one_id_exactly_one_wins() {
    let env = Env::new(&["sleep", "100"]);
    env.write_config();
    let bundle = env.bundle.to_str().unwrap();
    for _ in 0..5 {
        let id = env.id();
        let outs = at_once(8, |_| env.berth(&["create", "--bundle", bundle, &id]));
        let winners = outs.iter().filter(|o| o.code == 0).count();
        assert_eq!(
            winners,
            1,
            "{:?}",
            outs.iter().map(|o| &o.stderr).collect::<Vec<_>>()
        );
        for o in outs.iter().filter(|o| o.code != 0) {
            o.fails_with(&[&id, "already exists"]);
        }
        assert_eq!(env.status(&id), "created");
        env.berth(&["delete", &id]).ok();
        env.assert_clean(&id);
    }
    assert_no_zombie_children();
}

#[test]
fn simultaneous_starts_run_the_process_once() {
    let env = Env::new(&["sh", "-c", "echo x >> /out/ran; sleep 100"]);
    env.write_config();
    let bundle = env.bundle.to_str().unwrap();
    let id = env.id();
    env.berth(&["create", "--bundle", bundle, &id]).ok();
    let outs = at_once(6, |_| env.berth(&["start", &id]));
    assert_eq!(outs.iter().filter(|o| o.code == 0).count(), 1);
    for o in outs.iter().filter(|o| o.code != 0) {
        o.fails_with(&["cannot start", "running"]);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.read_out("ran"), "x\n");
    let outs = at_once(4, |_| env.berth(&["delete", "--force", &id]));
    for o in &outs {
        o.ok();
    }
    env.assert_clean(&id);
    assert_no_zombie_children();
}

#[test]
fn kill_and_delete_race_the_containers_own_exit() {
    let env = Env::new(&["sh", "-c", "sleep 0.0$(($$ % 5))"]);
    env.write_config();
    let bundle = env.bundle.to_str().unwrap();
    for round in 0..15 {
        let id = env.id();
        env.berth(&["create", "--bundle", bundle, &id]).ok();
        env.berth(&["start", &id]).ok();
        // The process exits on its own within ~40 ms while kill and delete land.
        std::thread::sleep(Duration::from_millis(round % 5 * 10));
        let outs = at_once(3, |i| match i {
            0 => env.berth(&["kill", &id, "KILL"]),
            1 => env.berth(&["kill", "--all", &id, "TERM"]),
            _ => env.berth(&["delete", "--force", &id]),
        });
        for (i, o) in outs.iter().enumerate() {
            if i == 2 {
                o.ok();
            } else if o.code != 0 {
                // Lost the race: the container had exited or was already deleted.
                let e = &o.stderr;
                assert!(
                    e.contains("not running") || e.contains("does not exist"),
                    "round {round}: kill failed unclearly: {e}"
                );
                o.fails_with(&[&id]);
            }
        }
        env.assert_clean(&id);
    }
    assert_no_fds_into(env.tmp.path());
    assert_no_zombie_children();
}

#[test]
fn state_while_delete_runs_is_either_whole_or_gone() {
    let env = Env::new(&["sleep", "100"]);
    env.write_config();
    let bundle = env.bundle.to_str().unwrap();
    for _ in 0..8 {
        let id = env.id();
        env.berth(&["run", "--detach", "--bundle", bundle, &id])
            .ok();
        let outs = at_once(2, |i| {
            if i == 0 {
                vec![env.berth(&["delete", "--force", &id])]
            } else {
                let mut seen = Vec::new();
                loop {
                    let o = env.berth(&["state", &id]);
                    let done = o.code != 0;
                    seen.push(o);
                    if done || seen.len() > 2000 {
                        break seen;
                    }
                }
            }
        });
        outs[0][0].ok();
        for o in &outs[1] {
            if o.code == 0 {
                let v: Value = serde_json::from_str(&o.stdout).expect("whole state JSON");
                assert!(
                    matches!(v["status"].as_str(), Some("running" | "stopped")),
                    "{v}"
                );
            } else {
                o.fails_with(&[&id, "does not exist"]);
            }
        }
        env.assert_clean(&id);
    }
    assert_no_zombie_children();
}

#[test]
fn delete_waits_for_a_create_in_progress() {
    // A slow createRuntime hook keeps create inside its lock: delete, state and list meet
    // a container that is "creating", never half of one.
    let mut env = Env::new(&["sleep", "100"]);
    env.push(
        "/hooks/createRuntime",
        serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "1"]}),
    );
    env.write_config();
    let bundle = env.bundle.to_str().unwrap();
    let id = env.id();
    let outs = at_once(2, |i| {
        if i == 0 {
            env.berth(&["create", "--bundle", bundle, &id])
        } else {
            std::thread::sleep(Duration::from_millis(400));
            let s = env.berth(&["state", &id]);
            assert!(
                s.stdout.contains("\"creating\"") || s.stderr.contains("being created"),
                "state during create: {} {}",
                s.stdout,
                s.stderr
            );
            let l = env.berth(&["list", "--format", "json"]);
            assert!(l.ok().stdout.contains("\"creating\""), "{}", l.stdout);
            env.berth(&["delete", &id])
        }
    });
    outs[0].ok();
    // delete waited for the create to finish, then removed the created container.
    outs[1].ok();
    env.assert_clean(&id);
    assert_no_zombie_children();
}
