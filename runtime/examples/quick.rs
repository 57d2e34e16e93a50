//! Fixed-size actor workloads for `perf stat` A/B comparisons (criterion's benches run for a
//! fixed time, not a fixed amount of work, and wall time is meaningless on a loaded machine;
//! task-clock is not).
//!
//! `cargo run --release -p wippy-rt --example quick -- pingpong|fanin [n] [workers]`

use std::time::{Duration, Instant};

use wippy_rt::*;

struct Ping {
    n: u64,
    pong: Option<Pid>,
}
struct Pong {
    back: Pid,
}

fn send(cx: &ProcessCx<'_>, to: &Pid) {
    cx.handle()
        .send(Package::new(
            cx.pid().clone(),
            to.clone(),
            String::new(),
            vec![Value::Int(1)],
        ))
        .unwrap();
}

impl Process for Ping {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        let Some(pong) = self.pong.clone() else {
            let p = cx.handle().spawn(
                "h",
                Box::new(Pong {
                    back: cx.pid().clone(),
                }),
                "main",
                vec![],
                SpawnOptions::default(),
            )?;
            send(cx, &p);
            self.pong = Some(p);
            out.set_status(Status::Idle);
            return Ok(());
        };
        for _ in ev.drain(..) {
            self.n -= 1;
            if self.n == 0 {
                cx.handle().terminate(&pong)?;
                out.finish(Ok(Value::Nil));
                return Ok(());
            }
            send(cx, &pong);
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

impl Process for Pong {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for _ in ev.drain(..) {
            send(cx, &self.back);
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

struct Sender {
    to: Pid,
    n: usize,
}
impl Process for Sender {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        _: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for _ in 0..self.n {
            send(cx, &self.to);
        }
        out.finish(Ok(Value::Nil));
        Ok(())
    }
}

struct FanIn {
    senders: usize,
    per: usize,
    got: usize,
    started: bool,
}
impl Process for FanIn {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        if !self.started {
            self.started = true;
            for _ in 0..self.senders {
                let s = Sender {
                    to: cx.pid().clone(),
                    n: self.per,
                };
                cx.handle()
                    .spawn("h", Box::new(s), "main", vec![], SpawnOptions::default())?;
            }
        }
        self.got += ev.len();
        ev.clear();
        if self.got == self.senders * self.per {
            out.finish(Ok(Value::Nil));
        } else {
            out.set_status(Status::Idle);
        }
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "pingpong".into());
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(3_000_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let rt = Builder::new().workers(workers).pin(false).build().unwrap();
    let h = rt.handle();
    h.add_host("h", HostConfig::default()).unwrap();
    let p: Box<dyn Process> = match what.as_str() {
        "fanin" => Box::new(FanIn {
            senders: 1000,
            per: (n as usize / 1000).max(1),
            got: 0,
            started: false,
        }),
        _ => Box::new(Ping { n, pong: None }),
    };
    let t = Instant::now();
    let (_p, w) = h
        .spawn_watched("h", p, "main", vec![], SpawnOptions::default())
        .unwrap();
    w.wait().unwrap();
    let el = t.elapsed();
    println!(
        "{what} n={n} on {workers} worker(s): {:.1} ns per message/round trip",
        el.as_nanos() as f64 / n as f64
    );
    rt.shutdown(Duration::from_secs(1));
}
