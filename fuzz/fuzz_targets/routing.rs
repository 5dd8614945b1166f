//! Request routing: `App::respond` on an arbitrary method, path, query and headers.
//!
//! Input layout: line 1 the method, line 2 the request target, each further line a header
//! `name: value`. Requests the `http` crate refuses to build are skipped (hyper would refuse
//! them before routing too).
#![no_main]

use std::sync::{Arc, OnceLock};

use hibp_mirror::server::indexes::IndexSet;
use hibp_mirror::server::{App, Config};
use hyper::Request;
use libfuzzer_sys::fuzz_target;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App::new(Arc::new(IndexSet::sample()), Config::default()))
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let method = lines.next().unwrap_or_default();
    let target = lines.next().unwrap_or_default();
    let mut builder = Request::builder().method(method).uri(target);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        builder = builder.header(name, value.trim_ascii());
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let response = app().respond(&request);
    let status = response.status().as_u16();
    assert!((200..600).contains(&status));
    // Content-Length, when set, matches the body.
    let body = response.body().to_bytes();
    if let Some(len) = response.headers().get("content-length") {
        let len: usize = len.to_str().unwrap().parse().unwrap();
        if request.method() != "HEAD" {
            assert_eq!(len, body.len());
        }
    }
});
