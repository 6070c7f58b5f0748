//! The Wireshark Lua dissector in `docs/wireshark/guestwire.lua` stays in step with the codecs.

use guestwire::wire::quantix::Payload;

const LUA: &str = include_str!("../docs/wireshark/guestwire.lua");

#[test]
fn the_lua_arm_table_names_every_quantix_payload_arm_by_its_field_number() {
    for (field, name) in Payload::ARMS {
        let entry = format!("[{field}] = \"{name}\",");
        assert!(LUA.contains(&entry), "guestwire.lua lacks `{entry}`");
    }
    let entries = LUA.matches("] = \"").count();
    assert_eq!(
        entries,
        Payload::ARMS.len(),
        "guestwire.lua has arms the codec lacks"
    );
}
