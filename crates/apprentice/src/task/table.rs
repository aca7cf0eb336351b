//! Every model's records over the seeds of a run, in table order.

/// One model's records, one per seed it ran on, in seed order.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSeeds<R> {
    /// The model's name in results and tables.
    pub name: String,
    /// `(seed, record)` for each seed the model ran on.
    pub seeds: Vec<(u64, R)>,
}

impl<R> ModelSeeds<R> {
    /// The records alone, in seed order.
    pub fn records(&self) -> impl Iterator<Item = &R> {
        self.seeds.iter().map(|(_, record)| record)
    }
}

/// The models of a run in the order they first appeared, each with its records per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedTable<R> {
    models: Vec<ModelSeeds<R>>,
}

impl<R> Default for SeedTable<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> SeedTable<R> {
    /// No models yet.
    pub fn new() -> Self {
        Self { models: Vec::new() }
    }

    /// Adds one seed's rows: each record joins its model, a model not seen before is appended.
    pub fn add(&mut self, seed: u64, rows: Vec<(String, R)>) {
        for (name, record) in rows {
            match self.models.iter_mut().find(|model| model.name == name) {
                Some(model) => model.seeds.push((seed, record)),
                None => self.models.push(ModelSeeds {
                    name,
                    seeds: vec![(seed, record)],
                }),
            }
        }
    }

    /// The models, in table order.
    pub fn models(&self) -> &[ModelSeeds<R>] {
        &self.models
    }

    /// The models, in table order, by value.
    pub fn into_models(self) -> Vec<ModelSeeds<R>> {
        self.models
    }
}
