pub mod dashboard;
pub mod keys;
pub mod not_found;
pub mod providers;
pub mod requests;
pub mod system;
pub mod teams;
pub mod tester;
