//! Byte-exact encodings, each made by an independent D-Bus implementation (Python's jeepney
//! 0.9, `new_method_call(...).serialise(serial=N)`) and checked in as hex.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

const SD: &str = "org.freedesktop.systemd1";
const SD_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

#[test]
fn hello_matches_jeepney() {
    let want = hex(
        "6c01000100000000010000006d00000001016f00150000002f6f72672f667265656465736b746f702f44427573000000\
         02017300140000006f72672e667265656465736b746f702e4442757300000000030173000500000048656c6c6f000000\
         06017300140000006f72672e667265656465736b746f702e4442757300000000",
    );
    let dbus = "org.freedesktop.DBus";
    let got = method_call(1, dbus, "/org/freedesktop/DBus", dbus, "Hello", &[]);
    assert_eq!(got, want);
}

#[test]
fn start_transient_unit_matches_jeepney() {
    let want = hex(
        "6c010001d000000002000000b600000001016f00190000002f6f72672f667265656465736b746f702f73797374656d6431\
         0000000000000002017300200000006f72672e667265656465736b746f702e73797374656d64312e4d616e61676572\
         0000000000000000030173001200000053746172745472616e7369656e74556e6974000000000000060173001800\
         00006f72672e667265656465736b746f702e73797374656d643100000000000000000801670010737361287376296128\
         736128737629290000000f00000062657274682d742d312e73636f706500070000007265706c61636500a10000000000\
         00000b0000004465736372697074696f6e0001730000180000006c6962636f6e7461696e657220636f6e7461696e6572\
         203100000000000000000400000050494473000261750000000004000000d20400000800000044656c656761746500\
         0162000100000000000000090000004d656d6f72794d6178000174000000000000000000001000000000000b00000041\
         6c6c6f776564435055730002617900010000000300000000000000",
    );
    let props = vec![
        Value::prop("Description", Value::str("libcontainer container 1")),
        Value::prop("PIDs", Value::Array("u".into(), vec![Value::U32(1234)])),
        Value::prop("Delegate", Value::Bool(true)),
        Value::prop("MemoryMax", Value::U64(1 << 20)),
        Value::prop(
            "AllowedCPUs",
            Value::Array("y".into(), vec![Value::Byte(3)]),
        ),
    ];
    let body = [
        Value::str("berth-t-1.scope"),
        Value::str("replace"),
        Value::Array("(sv)".into(), props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    let got = method_call(2, SD, SD_PATH, MANAGER, "StartTransientUnit", &body);
    assert_eq!(got, want);
}

#[test]
fn set_unit_properties_matches_jeepney() {
    let want = hex(
        "6c0100013800000003000000ad00000001016f00190000002f6f72672f667265656465736b746f702f73797374656d6431\
         0000000000000002017300200000006f72672e667265656465736b746f702e73797374656d64312e4d616e61676572\
         00000000000000000301730011000000536574556e697450726f7065727469657300000000000000060173001800\
         00006f72672e667265656465736b746f702e73797374656d64310000000000000000080167000773626128737629000000\
         000f00000062657274682d742d312e73636f706500010000001800000000000000080000005461736b734d6178000174\
         000a00000000000000",
    );
    let body = [
        Value::str("berth-t-1.scope"),
        Value::Bool(true),
        Value::Array("(sv)".into(), vec![Value::prop("TasksMax", Value::U64(10))]),
    ];
    let got = method_call(3, SD, SD_PATH, MANAGER, "SetUnitProperties", &body);
    assert_eq!(got, want);
}

#[test]
fn stop_unit_matches_jeepney() {
    let want = hex(
        "6c0100012000000004000000a000000001016f00190000002f6f72672f667265656465736b746f702f73797374656d6431\
         0000000000000002017300200000006f72672e667265656465736b746f702e73797374656d64312e4d616e61676572\
         0000000000000000030173000800000053746f70556e6974000000000000000006017300180000006f72672e66726565\
         6465736b746f702e73797374656d6431000000000000000008016700027373000f00000062657274682d742d312e7363\
         6f706500070000007265706c61636500",
    );
    let body = [Value::str("berth-t-1.scope"), Value::str("replace")];
    let got = method_call(4, SD, SD_PATH, MANAGER, "StopUnit", &body);
    assert_eq!(got, want);
}

#[test]
fn properties_get_matches_jeepney() {
    let want = hex(
        "6c0100013500000005000000a800000001016f00340000002f6f72672f667265656465736b746f702f73797374656d6431\
         2f756e69742f62657274685f3264745f3264315f326573636f706500000000020173001f0000006f72672e6672656564\
         65736b746f702e444275732e50726f70657274696573000301730003000000476574000000000006017300180000006f\
         72672e667265656465736b746f702e73797374656d6431000000000000000008016700027373001e0000006f72672e66\
         7265656465736b746f702e73797374656d64312e53636f706500000c000000436f6e74726f6c47726f757000",
    );
    let body = [
        Value::str("org.freedesktop.systemd1.Scope"),
        Value::str("ControlGroup"),
    ];
    let path = "/org/freedesktop/systemd1/unit/berth_2dt_2d1_2escope";
    let got = method_call(5, SD, path, "org.freedesktop.DBus.Properties", "Get", &body);
    assert_eq!(got, want);
}

#[test]
fn add_match_matches_jeepney() {
    let want = hex(
        "6c01000196000000060000007f00000001016f00150000002f6f72672f667265656465736b746f702f44427573000000\
         02017300140000006f72672e667265656465736b746f702e444275730000000003017300080000004164644d61746368\
         000000000000000006017300140000006f72672e667265656465736b746f702e44427573000000000801670001730000\
         91000000747970653d277369676e616c272c73656e6465723d276f72672e667265656465736b746f702e73797374656d\
         6431272c696e746572666163653d276f72672e667265656465736b746f702e73797374656d64312e4d616e6167657227\
         2c6d656d6265723d274a6f6252656d6f766564272c706174683d272f6f72672f667265656465736b746f702f73797374\
         656d64312700",
    );
    let rule = "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved',path='/org/freedesktop/systemd1'";
    let dbus = "org.freedesktop.DBus";
    let got = method_call(
        6,
        dbus,
        "/org/freedesktop/DBus",
        dbus,
        "AddMatch",
        &[Value::str(rule)],
    );
    assert_eq!(got, want);
}

#[test]
fn job_removed_signal_parses() {
    let bytes = hex(
        "6c04000149000000090000007a00000001016f00190000002f6f72672f667265656465736b746f702f73797374656d6431\
         0000000000000002017300200000006f72672e667265656465736b746f702e73797374656d64312e4d616e61676572\
         0000000000000000030173000a0000004a6f6252656d6f7665640000000000000801670004756f737300000000000000\
         4d000000200000002f6f72672f667265656465736b746f702f73797374656d64312f6a6f622f3737000000000f000000\
         62657274682d742d312e73636f70650004000000646f6e6500",
    );
    assert_eq!(message_len(&bytes), Ok(Some(bytes.len())));
    let m = parse(&bytes).expect("parse");
    assert_eq!((m.kind, m.serial), (SIGNAL, 9));
    assert_eq!(m.member.as_deref(), Some("JobRemoved"));
    assert_eq!(m.interface.as_deref(), Some(MANAGER));
    assert_eq!(
        m.body,
        vec![
            Value::U32(77),
            Value::Path("/org/freedesktop/systemd1/job/77".into()),
            Value::str("berth-t-1.scope"),
            Value::str("done"),
        ]
    );
}

#[test]
fn error_reply_parses() {
    let bytes = hex(
        "6c030001250000000a0000003f00000004017300230000006f72672e667265656465736b746f702e73797374656d64312e\
         4e6f53756368556e697400000000000501750004000000080167000173000020000000556e69742062657274682d742d\
         312e73636f7065206e6f74206c6f616465642e00",
    );
    let m = parse(&bytes).expect("parse");
    assert_eq!((m.kind, m.reply_serial), (ERROR, Some(4)));
    assert_eq!(
        m.error_name.as_deref(),
        Some("org.freedesktop.systemd1.NoSuchUnit")
    );
    assert_eq!(m.body, vec![Value::str("Unit berth-t-1.scope not loaded.")]);
}

#[test]
fn variant_reply_parses() {
    let bytes = hex(
        "6c020001260000000b0000000f0000000501750004000000080167000176000001730000\
         1d0000002f73797374656d2e736c6963652f62657274682d742d312e73636f706500",
    );
    let m = parse(&bytes).expect("parse");
    assert_eq!((m.kind, m.reply_serial), (METHOD_RETURN, Some(4)));
    assert_eq!(
        m.body,
        vec![Value::Variant(Box::new(Value::str(
            "/system.slice/berth-t-1.scope"
        )))]
    );
}

#[test]
fn round_trip_of_nested_types() {
    let v = Value::Array(
        "(sa(sv))".into(),
        vec![Value::Struct(vec![
            Value::str("aux"),
            Value::Array(
                "(sv)".into(),
                vec![
                    Value::prop("X", Value::I64(-5)),
                    Value::prop("Y", Value::Array("y".into(), vec![])),
                ],
            ),
        ])],
    );
    let mut w = Writer::default();
    w.put(&Value::Byte(1));
    w.put(&v);
    let got = Reader::new(&w.buf).all("ya(sa(sv))").expect("read");
    assert_eq!(got, vec![Value::Byte(1), v]);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert!(matches!(first_type(b"a"), Err(WireError::Signature(_))));
    assert!(matches!(first_type(b"(s"), Err(WireError::Signature(_))));
    assert_eq!(message_len(b"B\x01"), Ok(None));
    assert_eq!(message_len(&[b'B'; 16]), Err(WireError::BigEndian));
    let mut bytes = method_call(1, "a.b", "/", "a.b", "M", &[Value::str("x")]);
    bytes.truncate(bytes.len() - 2);
    assert!(parse(&bytes).is_err());
    assert!(Reader::new(&[9, 0, 0, 0]).all("s").is_err());
}
