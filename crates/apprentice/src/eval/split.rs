//! Which samples `apprentice eval` scores a saved model on, for image checkpoints and text
//! runs alike.

/// Which samples a saved model is scored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalSplit {
    /// The test split of the seed the model was trained with: the samples its recorded test
    /// metrics come from.
    Test,
    /// Every sample the run read (for an image data set with an official split, its training
    /// and test pools together).
    All,
}

impl EvalSplit {
    /// `test` or `all`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "test" => Some(Self::Test),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    /// The word the command takes (`test`, `all`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::All => "all",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_names() {
        for split in [EvalSplit::Test, EvalSplit::All] {
            assert_eq!(EvalSplit::parse(split.name()), Some(split));
        }
        assert_eq!(EvalSplit::parse("train"), None);
    }
}
