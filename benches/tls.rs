//! Certificates for one stack run (target: ≤ 50 ms): a new project CA, and a leaf for the FQDN
//! and the TLS services issued from it, both written to disk as `up` does.
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use harness::tls::Ca;

fn certificates(c: &mut Criterion) {
    let names: Vec<String> = ["app.localtest.me", "proxy", "geoip", "mailpit", "netcup"]
        .map(String::from)
        .to_vec();
    c.bench_function("new_ca_and_leaf_written", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let ca = Ca::create(dir.path()).unwrap();
            let leaf = ca.issue(&names).unwrap();
            black_box(leaf.write(dir.path(), "proxy", &ca).unwrap());
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = Ca::load_or_create(dir.path()).unwrap();
    c.bench_function("reused_ca_and_leaf_written", |b| {
        b.iter(|| {
            let (ca, _) = Ca::load_or_create(&ca.dir).unwrap();
            let leaf = ca.issue(&names).unwrap();
            black_box(leaf.write(dir.path(), "proxy", &ca).unwrap());
        })
    });
}

criterion_group!(benches, certificates);
criterion_main!(benches);
