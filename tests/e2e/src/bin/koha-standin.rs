//! Runs the Koha stand-in on its own, so the add-on can be tried without a Koha.
//!
//! `koha-standin [--port N] [--profile LEGACY|KOHA_24_05|NEWEST] [--synthetic P,I,C]`; serves
//! until killed. `--synthetic 200000,1000000,100000` adds that many generated patrons, items and
//! loans to the REST lists, to try the offline checks' download at a large library's size.

use e2e::standin::synthetic::Synthetic;
use e2e::standin::{Config, Profile, StandIn, DEMO_PASSWORD, DEMO_USER};

fn usage() -> ! {
    eprintln!(
        "usage: koha-standin [--port N] [--profile LEGACY|KOHA_24_05|NEWEST] \
         [--synthetic PATRONS,ITEMS,CHECKOUTS]"
    );
    std::process::exit(2);
}

/// `P,I,C`: generated patrons, items and loans.
fn parse_synthetic(text: &str) -> Option<Synthetic> {
    let counts: Vec<u32> = text
        .split(',')
        .map(|n| n.trim().replace('_', "").parse().ok())
        .collect::<Option<_>>()?;
    match counts[..] {
        [patrons, items, checkouts] => Some(Synthetic {
            patrons,
            items,
            checkouts,
        }),
        _ => None,
    }
}

fn main() {
    let mut port = 0u16;
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => usage(),
            },
            "--profile" => match args.next().as_deref().and_then(Profile::parse) {
                Some(p) => config.profile = p,
                None => usage(),
            },
            "--synthetic" => match args.next().as_deref().and_then(parse_synthetic) {
                Some(s) => config.synthetic = s,
                None => usage(),
            },
            _ => usage(),
        }
    }
    let profile = config.profile;
    let synthetic = config.synthetic;
    let koha = match StandIn::start_on(config, port) {
        Ok(koha) => koha,
        Err(e) => {
            eprintln!("koha-standin: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "Koha stand-in ({profile:?}) listening at {}",
        koha.base_url()
    );
    println!("Staff interface URL: {}", koha.base_url());
    println!("Librarian: {DEMO_USER} / {DEMO_PASSWORD} (library DE-627)");
    println!("Patrons: cards C0001..C0010; items: barcodes B0001..B0050");
    if !synthetic.is_empty() {
        println!(
            "Generated for the offline checks: {} patrons (cards {}, ...), {} items (barcodes {}, ...), \
             {} loans",
            synthetic.patrons,
            Synthetic::cardnumber(0),
            synthetic.items,
            Synthetic::barcode(0),
            synthetic.loans()
        );
    }
    println!("Control interface: {}/__control/model", koha.base_url());
    loop {
        std::thread::park();
    }
}
