//! The one loop every experiment runs.
//!
//! A [`Task`] is one kind of experiment: image classification
//! ([`crate::experiment::run::ImageTask`]), text classification
//! ([`crate::text::experiment::TextTask`]), continual learning
//! ([`crate::experiment::continual::ContinualTask`]) and language modelling
//! ([`crate::lm::experiment::LmTask`]). Each knows its data, its teacher, its students and how to
//! evaluate them on one seed; [`run_task`] runs it for every seed, gathers each model's records
//! over the seeds in a [`SeedTable`] and hands the table back to the task to summarise. The
//! document the classification tasks write, the [`Results`](crate::report::results::Results)
//! envelope with optional sections, is [`ResultsFile`].
//!
//! This module sits below the tasks: it names none of them in code, so each task imports it
//! and none of them imports another.

mod document;
mod kind;
mod summary;
mod table;

pub use document::{ResultsFile, now_unix_s};
pub use kind::TaskKind;
pub use summary::{envelope, model_result};
pub use table::{ModelSeeds, SeedTable};

use crate::distill::train::TrainObserver;

/// One kind of experiment, as the runner drives it.
pub trait Task {
    /// One model's measurements on one seed.
    type Record;
    /// What the whole run returns.
    type Output;
    /// Why the run stopped.
    type Error;

    /// The seeds to run, in order.
    fn seeds(&self) -> Vec<u64>;

    /// Trains (or reads back from an earlier, interrupted session of the same run folder) and
    /// evaluates every model of `seed`; one `(name, record)` per model, in table order.
    fn run_seed(
        &mut self,
        seed: u64,
        observer: &mut dyn TrainObserver,
    ) -> Result<Vec<(String, Self::Record)>, Self::Error>;

    /// Summarises every model over the seeds into the run's output.
    fn finish(self, table: SeedTable<Self::Record>) -> Result<Self::Output, Self::Error>;
}

/// Runs `task` for each of its seeds in order and summarises the models over them.
///
/// A model that appears on some seeds only (a method that skipped a seed) keeps the seeds it
/// has; models keep the order in which they first appeared.
pub fn run_task<T: Task>(
    mut task: T,
    observer: &mut dyn TrainObserver,
) -> Result<T::Output, T::Error> {
    let mut table = SeedTable::new();
    for seed in task.seeds() {
        let rows = task.run_seed(seed, observer)?;
        table.add(seed, rows);
    }
    task.finish(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::train::Silent;

    /// A task whose models score `seed × weight`; the second model is missing on seed 1.
    struct Counting {
        seeds: Vec<u64>,
        ran: Vec<u64>,
    }

    impl Task for Counting {
        type Record = f64;
        type Output = (Vec<u64>, Vec<(String, Vec<(u64, f64)>)>);
        type Error = String;

        fn seeds(&self) -> Vec<u64> {
            self.seeds.clone()
        }

        fn run_seed(
            &mut self,
            seed: u64,
            _: &mut dyn TrainObserver,
        ) -> Result<Vec<(String, f64)>, String> {
            if seed == 99 {
                return Err("seed 99 failed".to_string());
            }
            self.ran.push(seed);
            let mut rows = vec![("teacher".to_string(), seed as f64)];
            if seed != 1 {
                rows.push(("student".to_string(), 2.0 * seed as f64));
            }
            Ok(rows)
        }

        fn finish(self, table: SeedTable<f64>) -> Result<Self::Output, String> {
            let models = table
                .into_models()
                .into_iter()
                .map(|m| (m.name, m.seeds))
                .collect();
            Ok((self.ran, models))
        }
    }

    #[test]
    fn every_seed_runs_in_order_and_each_model_gathers_its_seeds() {
        let task = Counting {
            seeds: vec![2, 1, 3],
            ran: Vec::new(),
        };
        let (ran, models) = run_task(task, &mut Silent::default()).unwrap();
        assert_eq!(ran, vec![2, 1, 3]);
        assert_eq!(
            models,
            vec![
                ("teacher".to_string(), vec![(2, 2.0), (1, 1.0), (3, 3.0)]),
                ("student".to_string(), vec![(2, 4.0), (3, 6.0)]),
            ]
        );
    }

    #[test]
    fn a_failing_seed_stops_the_run_with_its_error() {
        let task = Counting {
            seeds: vec![0, 99, 1],
            ran: Vec::new(),
        };
        assert_eq!(
            run_task(task, &mut Silent::default()).unwrap_err(),
            "seed 99 failed"
        );
    }
}
