//! The frozen teacher's forward pass on a second thread, one batch ahead of the student.
//!
//! In a distillation step the live teacher's logits for the next batch do not depend on the
//! student, so while the student runs its forward pass, backward pass and update on batch `i`,
//! a worker thread can already run the teacher on batch `i + 1` (about 40% of the arithmetic of
//! the MLP benchmark step). The caller decides every batch (order, augmentation) itself and
//! hands over its inputs in order; the worker computes exactly what the caller's thread would
//! have, so results do not depend on whether the worker is used.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use burn::tensor::Device;

use crate::backend::{self, ComputeDevice, DeviceKind};
use crate::models::Network;

/// Runs a teacher on batches submitted in order, and hands back their logits in the same order.
///
/// With more than one worker thread allowed (rayon's pool, which `--threads` sizes) on the CPU
/// device, the teacher runs on its own thread; otherwise [`TeacherPrefetcher::next_logits`]
/// runs it on the caller's thread, so one thread stays one thread.
pub struct TeacherPrefetcher {
    width: usize,
    mode: Mode,
}

enum Mode {
    /// Batches wait here until their logits are asked for.
    Inline {
        teacher: Network,
        device: Device,
        queue: VecDeque<(Vec<f32>, usize)>,
    },
    /// Batches go to the worker at once.
    Worker {
        jobs: Option<Sender<(Vec<f32>, usize)>>,
        results: Receiver<Vec<f32>>,
        handle: Option<JoinHandle<()>>,
        pending: usize,
    },
}

impl TeacherPrefetcher {
    /// A prefetcher of `teacher` (in inference mode) on inputs of `width` features, on a worker
    /// thread when [`TeacherPrefetcher::worker_allowed`] says so.
    pub fn new(teacher: &Network, device: &ComputeDevice, width: usize) -> Self {
        Self::with_worker(teacher, device, width, Self::worker_allowed(device))
    }

    /// Whether a second thread may be used: the device is the CPU (a GPU queues its own work)
    /// and rayon's pool, which sizes how many threads this process computes on, has more than
    /// one.
    pub fn worker_allowed(device: &ComputeDevice) -> bool {
        device.kind() == DeviceKind::Cpu && rayon::current_num_threads() > 1
    }

    /// A prefetcher that uses a worker thread exactly when `worker` is true.
    pub fn with_worker(
        teacher: &Network,
        device: &ComputeDevice,
        width: usize,
        worker: bool,
    ) -> Self {
        let inline = || Self {
            width,
            mode: Mode::Inline {
                teacher: teacher.clone(),
                device: device.inference(),
                queue: VecDeque::new(),
            },
        };
        if !worker {
            return inline();
        }
        let (jobs, inbox) = channel::<(Vec<f32>, usize)>();
        let (outbox, results) = channel();
        let (network, inference) = (teacher.clone(), device.inference());
        let handle = std::thread::Builder::new()
            .name("teacher".into())
            .spawn(move || {
                for (features, rows) in inbox {
                    let inputs = backend::matrix(features, rows, width, &inference);
                    let logits = backend::to_host(network.logits(inputs));
                    if outbox.send(logits).is_err() {
                        break;
                    }
                }
            });
        match handle {
            Ok(handle) => Self {
                width,
                mode: Mode::Worker {
                    jobs: Some(jobs),
                    results,
                    handle: Some(handle),
                    pending: 0,
                },
            },
            // No thread to be had: the same work on the caller's thread.
            Err(_) => inline(),
        }
    }

    /// Whether the teacher runs on its own thread.
    pub fn uses_worker(&self) -> bool {
        matches!(self.mode, Mode::Worker { .. })
    }

    /// Batches submitted whose logits have not been taken yet.
    pub fn pending(&self) -> usize {
        match &self.mode {
            Mode::Inline { queue, .. } => queue.len(),
            Mode::Worker { pending, .. } => *pending,
        }
    }

    /// Queues the teacher's forward pass on `rows` inputs (row-major, `width` features each).
    pub fn submit(&mut self, features: &[f32], rows: usize) {
        match &mut self.mode {
            Mode::Inline { queue, .. } => queue.push_back((features.to_vec(), rows)),
            Mode::Worker { jobs, pending, .. } => {
                // A stopped worker is reported by `next_logits`, which finds no result.
                if let Some(jobs) = jobs {
                    let _ = jobs.send((features.to_vec(), rows));
                }
                *pending += 1;
            }
        }
    }

    /// The teacher's logits (row-major, one row per input) for the oldest submitted batch.
    pub fn next_logits(&mut self) -> Result<Vec<f32>, String> {
        match &mut self.mode {
            Mode::Inline {
                teacher,
                device,
                queue,
            } => {
                let (features, rows) = queue.pop_front().ok_or("no teacher batch was submitted")?;
                let inputs = backend::matrix(features, rows, self.width, device);
                Ok(backend::to_host(teacher.logits(inputs)))
            }
            Mode::Worker {
                jobs,
                results,
                handle,
                pending,
            } => {
                if *pending == 0 {
                    return Err("no teacher batch was submitted".into());
                }
                match results.recv() {
                    Ok(logits) => {
                        *pending -= 1;
                        Ok(logits)
                    }
                    Err(_) => {
                        // The worker ended early: it can only have panicked.
                        jobs.take();
                        let why = handle
                            .take()
                            .and_then(|h| h.join().err())
                            .map(|payload| backend::panic_message(payload.as_ref()))
                            .unwrap_or_else(|| "it stopped".into());
                        Err(format!("the teacher's forward pass failed: {why}"))
                    }
                }
            }
        }
    }
}

impl Drop for TeacherPrefetcher {
    fn drop(&mut self) {
        if let Mode::Worker { jobs, handle, .. } = &mut self.mode {
            // Closing the queue ends the worker after the batch it is on.
            jobs.take();
            if let Some(handle) = handle.take() {
                let _ = handle.join();
            }
        }
    }
}
