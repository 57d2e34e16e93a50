//! Several process hosts on one runtime: how the shared workers are divided between them
//! (decision 0065). CPU-bound native processes on two hosts run side by side; the step counts
//! show the scheduler is fair **per runnable process**, whatever host it belongs to, and that
//! neither host starves. Bounds are loose (the machine is shared); the figures are printed.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use wippy::rt::{
    Builder, Error, Event, HostConfig, Pid, Process, ProcessCx, SpawnOptions, Status, StepOutput,
    Value,
};

/// Burns a fixed amount of CPU per step and asks to run again.
struct Spinner {
    steps: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Process for Spinner {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        _: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        events.clear();
        if self.stop.load(Relaxed) {
            out.finish(Ok(Value::Nil));
            return Ok(());
        }
        let mut x = 0u64;
        for i in 0..20_000u64 {
            x = black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        black_box(x);
        self.steps.fetch_add(1, Relaxed);
        out.set_status(Status::Continue);
        Ok(())
    }
}

/// Run `na` spinners on host A and `nb` on host B for `d`; step counts (A, B).
fn race(na: usize, nb: usize, d: Duration) -> (u64, u64) {
    let rt = Builder::new().workers(2).pin(false).build().unwrap();
    let h = rt.handle();
    h.add_host("app:a", HostConfig::default()).unwrap();
    h.add_host("app:b", HostConfig::default()).unwrap();
    let (sa, sb) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let mut pids: Vec<Pid> = Vec::new();
    // Interleave the spawns so neither host gets a head start.
    for i in 0..na.max(nb) {
        for (host, n, steps) in [("app:a", na, &sa), ("app:b", nb, &sb)] {
            if i < n {
                let p = Spinner {
                    steps: steps.clone(),
                    stop: stop.clone(),
                };
                pids.push(
                    h.spawn(host, Box::new(p), "main", vec![], SpawnOptions::default())
                        .unwrap(),
                );
            }
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let (a0, b0) = (sa.load(Relaxed), sb.load(Relaxed));
    std::thread::sleep(d);
    let (a1, b1) = (sa.load(Relaxed), sb.load(Relaxed));
    stop.store(true, Relaxed);
    rt.shutdown(Duration::from_secs(2));
    (a1 - a0, b1 - b0)
}

#[test]
fn equal_load_is_shared_evenly() {
    let (a, b) = race(8, 8, Duration::from_millis(600));
    let share_a = a as f64 / (a + b) as f64;
    eprintln!("hosts 8 vs 8 spinners: steps A {a}, B {b}, A share {share_a:.3}");
    assert!(a > 0 && b > 0);
    assert!((0.3..=0.7).contains(&share_a), "A share {share_a}");
}

#[test]
fn fairness_is_per_process_not_per_host() {
    let (a, b) = race(24, 3, Duration::from_millis(600));
    let (ra, rb) = (a as f64 / 24.0, b as f64 / 3.0);
    eprintln!(
        "hosts 24 vs 3 spinners: steps A {a}, B {b}; per process A {ra:.1}, B {rb:.1}, ratio B/A {:.2}",
        rb / ra
    );
    assert!(b > 0, "the small host is not starved");
    assert!(
        (0.4..=2.5).contains(&(rb / ra)),
        "per-process ratio {}",
        rb / ra
    );
}
