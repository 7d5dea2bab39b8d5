//! config.json bytes → parse, validate, plan: what `create` does before touching the host.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    berth::spec::fuzz::config(data);
});
