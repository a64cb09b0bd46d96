//! Value types that several stages share: the layer at the bottom (docs/ARCHITECTURE.md,
//! "Layers"). Nothing here names a module above it, so `config`, `git` and `ledger` can use these
//! types without reaching up into the stages that first made them.
pub mod allow;
pub mod build;
pub mod duration;
pub mod gate;
pub mod html;
pub mod keys;
pub mod metadata;
pub mod pytest_args;
pub mod release_name;
pub mod retention;
pub mod target;
pub mod timestamp;
pub mod tree;
