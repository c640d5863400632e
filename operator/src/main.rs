use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    quayside_operator::cli::run(quayside_operator::cli::Cli::parse()).await
}
