//! state.json bytes → what `state` and `list` do with a loaded state, minus /proc.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    berth::spec::fuzz::state(data);
});
