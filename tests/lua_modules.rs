//! Modules that do not block, exercised as Lua snippets on sandboxed states.

use std::sync::LazyLock;

use wippy::lua::vm::{StateFactory, VmConfig};

static FACTORY: LazyLock<StateFactory> = LazyLock::new(|| StateFactory::new(VmConfig::default()));

/// Run `src` (which uses `assert`) on a fresh process state with `modules` installed.
fn check(modules: &[&str], src: &str) {
    let mut st = FACTORY.acquire(modules).unwrap();
    let f = st.load_chunk("test:snippet", src).unwrap();
    if let Err(e) = f.call::<()>(()) {
        panic!("{e}");
    }
    FACTORY.release(st);
}

#[test]
fn errors_object_model() {
    check(
        &[],
        r##"
        assert(errors.UNKNOWN == "" and errors.NOT_FOUND == "NotFound" and errors.INVALID == "Invalid")
        assert(errors.RATE_LIMITED == "RateLimited" and errors.INTERNAL == "Internal")
        local e = errors.new("boom")
        assert(e:message() == "boom" and e:kind() == "" and e:retryable() == nil and e:details() == nil)
        assert(tostring(e) == "boom")
        assert(type(e) == "userdata")
        local e2 = errors.new({message = "nf", kind = errors.NOT_FOUND, retryable = true, details = {id = 7, name = "x"}})
        assert(e2:kind() == "NotFound" and e2:retryable() == true)
        assert(e2:details().id == 7 and e2:details().name == "x")
        -- wrongly typed optional fields are ignored
        local e3 = errors.new({message = "m", kind = 5, retryable = "yes", details = "no"})
        assert(e3:kind() == "" and e3:retryable() == nil and e3:details() == nil)
        -- two-argument form does not set a kind
        local e4 = errors.new("KIND", "msg")
        assert(e4:message() == "KIND" and e4:kind() == "")
        -- argument errors raise
        local ok, msg = pcall(errors.new, {})
        assert(not ok and msg:find("message field is required"), msg)
        ok, msg = pcall(errors.new, {message = 1})
        assert(not ok and msg:find("message must be a string"), msg)
        ok, msg = pcall(errors.new, 42)
        assert(not ok and type(msg) == "string", tostring(msg))
        -- wrap: message is the parent's Go-side string, context stored separately
        local w = errors.wrap(errors.new("a"), "b")
        assert(tostring(w) == "a" and w:message() == "a")
        local w2 = errors.wrap(w, "c")
        assert(w2:message() == "b: a", w2:message())
        assert(w2:stack():find("c"), w2:stack())
        local w3 = errors.wrap(e2, "ctx")
        assert(w3:kind() == "NotFound" and w3:retryable() == true and w3:details().id == 7)
        local ws = errors.wrap("plain", errors.new("ectx"))
        assert(ws:message() == "plain")
        ok, msg = pcall(errors.wrap, 1, "x")
        assert(not ok)
        -- is
        assert(errors.is(e2, errors.NOT_FOUND) and not errors.is(e2, errors.INVALID))
        assert(not errors.is("x", "") and not errors.is(nil, ""))
        ok = pcall(errors.is, e2, 1)
        assert(not ok)
        -- concat on either side, and between errors
        assert(e .. "!" == "boom!" and "!" .. e == "!boom" and e .. e2 == "boomnf" and e .. 1 == "boom1")
        -- getters ignore arguments (builder style sets nothing)
        assert(e:kind(errors.INVALID) == "")
        -- error(obj) keeps the object through pcall
        local ok2, got = pcall(error, e2)
        assert(not ok2 and got == e2 and got:kind() == "NotFound")
        -- call_stack
        local cs = errors.call_stack(e)
        assert(type(cs.thread) == "string" and #cs.frames >= 1 and cs.frames[1].source == "test:snippet", cs.frames[1].source)
        assert(cs.frames[1].line > 0)
        assert(errors.call_stack("x") == nil)
        "##,
    );
}

#[test]
fn errors_boundary_helpers() {
    use wippy::lua::modules::errors;
    use wippy::rt::Kind;
    let mut st = FACTORY.acquire(&[]).unwrap();
    let f = st
        .load_chunk(
            "test:boundary",
            r##"return function(which)
                 if which == 1 then return nil, errors.new("x") end
                 if which == 2 then return nil, "plain" end
                 if which == 3 then error(errors.wrap(errors.new({message = "m", kind = errors.NOT_FOUND, retryable = false}), "outer")) end
                 if which == 4 then error("runtime " .. "failure") end
                 if which == 5 then local t = nil; return t.x end
                 return 1
               end"##,
        )
        .unwrap();
    let main: mlua::Function = f.call(()).unwrap();
    let lua = st.lua();
    let (_, e): (mlua::Value, mlua::Value) = main.call(1).unwrap();
    let err = errors::returned_error_to_rt(&e).unwrap();
    assert_eq!(err.kind(), &Kind::INTERNAL);
    assert_eq!(err.message(), "x");
    let (_, e): (mlua::Value, mlua::Value) = main.call(2).unwrap();
    let err = errors::returned_error_to_rt(&e).unwrap();
    assert_eq!(
        (err.kind(), err.message(), err.retryable()),
        (&Kind::INTERNAL, "plain", Some(false))
    );
    let protected = wippy::lua::vm::protect::protected(lua, &main).unwrap();
    let (ok, v): (bool, mlua::Value) = protected.call(3).unwrap();
    assert!(!ok);
    let err = errors::raised_value_to_rt(lua, &v);
    assert_eq!(err.kind(), &Kind::NOT_FOUND);
    assert_eq!(err.message(), "m", "wrap context dropped at the boundary");
    assert_eq!(err.context(), None);
    assert_eq!(err.retryable(), Some(false));
    let (ok, v): (bool, mlua::Value) = protected.call(4).unwrap();
    assert!(!ok);
    let err = errors::raised_value_to_rt(lua, &v);
    assert_eq!(err.kind(), &Kind::INTERNAL);
    assert!(
        err.message().ends_with("runtime failure"),
        "{}",
        err.message()
    );
    let e = main.call::<()>(5).unwrap_err();
    let err = errors::lua_error_to_rt(&e);
    assert_eq!(err.kind(), &Kind::INTERNAL);
    assert!(
        err.message().contains("attempt to index a nil value"),
        "{}",
        err.message()
    );
    assert_eq!(errors::returned_error_to_rt(&mlua::Value::Integer(1)), None);
}

#[test]
fn json_module() {
    check(
        &["json"],
        r##"
        local function enc(v) local s, e = json.encode(v); assert(e == nil, tostring(e)); return s end
        assert(enc(nil) == "null" and enc(true) == "true" and enc(5) == "5")
        assert(enc(10/2) == "5", enc(10/2))
        assert(enc(0.1) == "0.1" and enc(1e-7) == "0.0000001" and enc(1/3) == "0.3333333333333333")
        assert(enc(1e21) == "1000000000000000000000", enc(1e21))
        assert(enc(0/0) == "null" and enc(1/0) == "null")
        assert(enc({}) == "[]")
        assert(enc({1, 2, "x"}) == '[1,2,"x"]')
        assert(enc({b = 1, a = {c = true}}) == '{"a":{"c":true},"b":1}')
        assert(enc("q\"\\\n\t\1") == '"q\\"\\\\\\n\\t\\u0001"', enc("q\"\\\n\t\1"))
        assert(enc("é") == '"é"')
        assert(enc({f = function() end}) == '{"f":null}')
        assert(enc(errors.wrap(errors.new("inner"), "ctx")) == '"ctx: inner"')
        local s, err = json.encode({1, nil, 3})
        assert(s == nil and err:kind() == errors.INTERNAL and tostring(err):find("sparse"), tostring(err))
        s, err = json.encode({1, 2, x = 3})
        assert(s == nil and tostring(err):find("mixed"))
        local t = {}; t.self = t
        s, err = json.encode(t)
        assert(s == nil and tostring(err):find("circular"))
        local deep = {}; local cur = deep
        for i = 1, 200 do cur.x = {}; cur = cur.x end
        s, err = json.encode(deep)
        assert(s == nil and tostring(err):find("depth"))
        -- decode
        local v, e = json.decode('{"a":[1,2.5,"s",null,true],"n":-3,"f":1.0,"e":1e3,"big":123456789012345678901}')
        assert(e == nil)
        assert(v.a[1] == 1 and math.type(v.a[1]) == "integer" and v.a[2] == 2.5 and v.a[3] == "s" and v.a[4] == nil and v.a[5] == true)
        assert(math.type(v.n) == "integer" and math.type(v.f) == "float" and math.type(v.e) == "float" and v.e == 1000)
        assert(math.type(v.big) == "float")
        v, e = json.decode("null"); assert(v == nil and e == nil)
        v, e = json.decode(""); assert(v == nil and e:kind() == errors.INVALID)
        v, e = json.decode(42); assert(v == nil and e:kind() == errors.INVALID and e:message() == "string expected")
        v, e = json.decode("{bad"); assert(v == nil and e:kind() == errors.INTERNAL)
        v, e = json.decode("[1] x"); assert(v == nil and e:kind() == errors.INTERNAL)
        -- round trip
        local rt = json.decode(json.encode({list = {1, 2, 3}, name = "n", nested = {ok = false}}))
        assert(rt.list[3] == 3 and rt.name == "n" and rt.nested.ok == false)
        "##,
    );
}

#[test]
fn yaml_module() {
    check(
        &["yaml"],
        r##"
        local s, e = yaml.encode({name = "app", port = 8080, tags = {"a", "b"}, ratio = 2.0})
        assert(e == nil, tostring(e))
        assert(s:find("name: app") and s:find("port: 8080") and s:find("ratio: 2\n") and s:find("%- a"), s)
        s = yaml.encode({b = 1, a = 2, c = 3}, {field_order = {"c"}, sort_unordered = true})
        assert(s == "c: 3\na: 2\nb: 1\n", s)
        local v, err = yaml.encode("x")
        assert(v == nil and err:kind() == errors.INVALID and err:message() == "table expected")
        v, err = yaml.decode("a: 1\nb: [x, 2.5]\nc: {d: true}\n")
        assert(err == nil and v.a == 1 and v.b[1] == "x" and v.b[2] == 2.5 and v.c.d == true)
        v, err = yaml.decode("")
        assert(v == nil and err:kind() == errors.INVALID)
        v, err = yaml.decode(5)
        assert(v == nil and err:kind() == errors.INVALID)
        v, err = yaml.decode("a: [1, 2")
        assert(v == nil and err:kind() == errors.INTERNAL)
        "##,
    );
}

#[test]
fn base64_module() {
    check(
        &["base64"],
        r##"
        assert(base64.encode("hello") == "aGVsbG8=" and base64.encode("") == "")
        assert(select("#", base64.encode("x")) == 1)
        assert(base64.decode("aGVsbG8=") == "hello" and base64.decode("") == "")
        assert(base64.decode(base64.encode("\0\255\1")) == "\0\255\1")
        local v, e = base64.decode("aGVsbG8")
        assert(v == nil and e:kind() == errors.INVALID and e:message() == "decode failed")
        v, e = base64.encode(12)
        assert(v == nil and e:kind() == errors.INVALID and e:message() == "string expected")
        v, e = base64.decode(nil)
        assert(v == nil and e:kind() == errors.INVALID)
        "##,
    );
}

#[test]
fn hash_module() {
    check(
        &["hash"],
        r##"
        assert(hash.md5("abc") == "900150983cd24fb0d6963f7d28e17f72")
        assert(hash.sha1("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        assert(hash.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        assert(hash.sha512("abc"):sub(1, 16) == "ddaf35a193617aba")
        assert(#hash.sha256("abc", true) == 32)
        assert(hash.hmac_sha256("The quick brown fox jumps over the lazy dog", "key") ==
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        assert(hash.hmac_md5("The quick brown fox jumps over the lazy dog", "key") == "80070713463e7749b90c2dc24911e275")
        assert(hash.fnv32("a") == 0xe40c292c)
        assert(hash.fnv64("") == 14695981039346656037)
        local v, e = hash.sha256(5)
        assert(v == nil and e:kind() == errors.INVALID)
        v, e = hash.hmac_sha1("x", nil)
        assert(v == nil and e:kind() == errors.INVALID)
        "##,
    );
}

#[test]
fn uuid_module() {
    check(
        &["uuid"],
        r##"
        local pat = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
        for _, f in ipairs({uuid.v1, uuid.v4, uuid.v7}) do
            local u = f(); assert(u:match(pat), u); assert(uuid.validate(u))
        end
        assert(uuid.version(uuid.v4()) == 4 and uuid.version(uuid.v7()) == 7 and uuid.version(uuid.v1()) == 1)
        assert(uuid.v4() ~= uuid.v4())
        local ns = "6ba7b810-9dad-11d1-80b4-00c04fd430c8" -- DNS namespace
        assert(uuid.v5(ns, "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d", uuid.v5(ns, "python.org"))
        assert(uuid.v3(ns, "python.org") == "6fa459ea-ee8a-3ca4-894e-db77e160355e")
        local v, e = uuid.v5("nope", "x"); assert(v == nil and e:kind() == errors.INVALID)
        assert(uuid.validate("{886313e1-3b8a-5372-9b90-0c9aee199e5d}") and uuid.validate("urn:uuid:886313e1-3b8a-5372-9b90-0c9aee199e5d"))
        assert(uuid.validate("886313e13b8a53729b900c9aee199e5d") and not uuid.validate("xyz") and not uuid.validate(5))
        assert(uuid.variant(uuid.v4()) == "RFC4122")
        local p = uuid.parse(uuid.v7())
        assert(p.version == 7 and p.variant == "RFC4122" and math.abs(p.timestamp - os.time()) < 5)
        p = uuid.parse(uuid.v1())
        assert(p.version == 1 and math.abs(p.timestamp - os.time()) < 5 and #p.node == 17)
        assert(uuid.format("886313E13B8A53729B900C9AEE199E5D") == "886313e1-3b8a-5372-9b90-0c9aee199e5d")
        assert(uuid.format("886313e1-3b8a-5372-9b90-0c9aee199e5d", "simple") == "886313e13b8a53729b900c9aee199e5d")
        assert(uuid.format("886313e1-3b8a-5372-9b90-0c9aee199e5d", "urn") == "urn:uuid:886313e1-3b8a-5372-9b90-0c9aee199e5d")
        v, e = uuid.parse("bad"); assert(v == nil and e:kind() == errors.INVALID)
        "##,
    );
}

#[test]
fn time_module_pure_part() {
    check(
        &["time"],
        r##"
        assert(time.SECOND == 1000000000 and time.MINUTE == 60 * time.SECOND and time.HOUR == 3600000000000)
        assert(time.RFC3339 == "2006-01-02T15:04:05Z07:00" and time.DATE_ONLY == "2006-01-02")
        assert(time.JANUARY == 1 and time.DECEMBER == 12 and time.SUNDAY == 0 and time.SATURDAY == 6)
        assert(tostring(time.utc) == "UTC" and time.utc:string() == "UTC")
        -- durations
        local d = time.parse_duration("1h30m")
        assert(tostring(d) == "1h30m0s" and d:minutes() == 90 and d:hours() == 1.5 and d:seconds() == 5400)
        assert(d:milliseconds() == 5400000 and d:nanoseconds() == 5400000000000)
        assert(tostring(time.parse_duration(1500)) == "1.5µs")
        assert(tostring(time.parse_duration("1.5s")) == "1.5s")
        local bad, err = time.parse_duration("abc")
        assert(bad == nil and err:kind() == errors.INVALID)
        bad, err = time.parse_duration({})
        assert(bad == nil and err:kind() == errors.INVALID)
        -- construction and fields
        local t = time.date(2024, 2, 29, 13, 4, 5, 123000000, time.utc)
        assert(t:year() == 2024 and t:month() == 2 and t:day() == 29 and t:hour() == 13 and t:minute() == 4)
        assert(t:second() == 5 and t:nanosecond() == 123000000 and t:weekday() == 4 and t:year_day() == 60)
        local y, m, dd = t:date(); assert(y == 2024 and m == 2 and dd == 29)
        local h, mi, s = t:clock(); assert(h == 13 and mi == 4 and s == 5)
        assert(t:unix() == 1709211845, t:unix())
        assert(t:unix_nano() == 1709211845123000000)
        assert(tostring(t) == "2024-02-29 13:04:05.123 +0000 UTC", tostring(t))
        assert(t:format_rfc3339() == "2024-02-29T13:04:05Z")
        assert(t:format(time.RFC3339NANO) == "2024-02-29T13:04:05.123Z")
        assert(t:format("Mon Jan _2 3:04PM 2006 .000 MST") == "Thu Feb 29 1:04PM 2024 .123 UTC", t:format("Mon Jan _2 3:04PM 2006 .000 MST"))
        assert(t:format("January 02, 06 15h") == "February 29, 24 13h")
        -- normalisation like Go: month 13 rolls over
        local n = time.date(2023, 13, 32, 25, 0, 0, 0, time.utc)
        assert(n:format(time.DATE_TIME) == "2024-02-02 01:00:00", n:format(time.DATE_TIME))
        local ok, e = pcall(time.date, 2024, 1, 1)
        assert(not ok and e:find("bad argument"), tostring(e))
        ok, e = pcall(time.date, 2024, 1, 1, 0, 0, 0, 0, "UTC")
        assert(not ok)
        -- arithmetic
        local t2 = t:add("1h"):add(time.parse_duration("30m")):add(60 * time.SECOND)
        assert(tostring(t2:sub(t)) == "1h31m0s")
        assert(t2:after(t) and t:before(t2) and not t:equal(t2) and t:equal(time.unix(t:unix(), 123000000)))
        assert(t:add_date(0, 1, 1):format(time.DATE_ONLY) == "2024-03-30")
        assert(t:add_date(1, 0, 0):format(time.DATE_ONLY) == "2025-03-01")
        ok = pcall(t.add, t, {})
        assert(not ok)
        assert(t:truncate(time.parse_duration("1h")):format(time.TIME_ONLY) == "13:00:00")
        assert(t:round(time.parse_duration("1h")):format(time.TIME_ONLY) == "13:00:00")
        assert(t:add("31m"):round(time.parse_duration("1h")):format(time.TIME_ONLY) == "14:00:00")
        ok = pcall(t.round, t, 5)
        assert(not ok, "round accepts only a Duration object")
        -- zero time
        assert(not t:is_zero())
        -- unix and locations
        local u = time.unix(0, 0):utc()
        assert(u:format(time.RFC3339) == "1970-01-01T00:00:00Z")
        local ny, lerr = time.load_location("America/New_York")
        assert(ny, tostring(lerr))
        local summer = time.date(2024, 7, 1, 12, 0, 0, 0, ny)
        assert(summer:format("15:04 MST -07:00") == "12:00 EDT -04:00", summer:format("15:04 MST -07:00"))
        assert(summer:utc():hour() == 16 and summer:location():string() == "America/New_York")
        local winter = summer:add_date(0, 6, 0)
        assert(winter:format("MST") == "EST")
        assert(winter:in_location(time.utc):hour() == 17)
        local nf, nerr = time.load_location("Nowhere/City")
        assert(nf == nil and nerr:kind() == errors.NOT_FOUND)
        nf, nerr = time.load_location("")
        assert(nf == nil and nerr:kind() == errors.INVALID)
        local fz = time.fixed_zone("X", 3 * 3600)
        assert(time.date(2024, 1, 1, 0, 0, 0, 0, fz):format(time.RFC3339) == "2024-01-01T00:00:00+03:00")
        -- parse
        local p, perr = time.parse(time.RFC3339, "2024-05-06T07:08:09.5+02:00")
        assert(p, tostring(perr))
        assert(p:utc():format(time.DATE_TIME) == "2024-05-06 05:08:09" and p:nanosecond() == 500000000)
        p = time.parse(time.DATE_TIME, "2024-05-06 07:08:09")
        assert(p:unix() == 1714979289 and p:location():string() == "UTC")
        p = time.parse(time.DATE_TIME, "2024-07-01 12:00:00", ny)
        assert(p:utc():hour() == 16)
        p = time.parse("Jan 2, 2006 at 3:04pm (MST)", "Feb 3, 2013 at 7:54pm (PST)")
        assert(p:hour() == 19 and p:format("MST") == "PST")
        p = time.parse(time.RFC1123, "Mon, 06 May 2024 07:08:09 UTC")
        assert(p:unix() == 1714979289)
        p, perr = time.parse(time.RFC3339, "2024-13-01T00:00:00Z")
        assert(p == nil and perr:kind() == errors.INVALID)
        p, perr = time.parse(time.DATE_ONLY, "2024-02-30")
        assert(p == nil and perr:message():find("day out of range"), perr and perr:message())
        p, perr = time.parse(time.DATE_ONLY, "2024-02-03 extra")
        assert(p == nil)
        -- now
        local now = time.now()
        assert(math.abs(now:unix() - os.time()) <= 1)
        "##,
    );
}

#[test]
fn os_subset() {
    check(
        &[],
        r##"
        assert(os.platform == "wippy")
        local now = os.time()
        assert(math.type(now) == "integer" and now > 1700000000)
        assert(os.time({year = 2024, month = 1, day = 2, hour = 3, min = 4, sec = 5}) ==
            os.time({year = 2024, month = 1, day = 1, hour = 27, min = 4, sec = 5}))
        local t = os.date("!*t", 86400 + 3661)
        assert(t.year == 1970 and t.month == 1 and t.day == 2 and t.hour == 1 and t.min == 1 and t.sec == 1)
        assert(t.wday == 6 and t.yday == 2)
        assert(os.date("!%Y-%m-%d %H:%M:%S", 0) == "1970-01-01 00:00:00")
        assert(os.date("!%a %b %d %j %p %I %y %%", 0) == "Thu Jan 01 001 AM 12 70 %")
        assert(type(os.date()) == "string")
        local c1 = os.clock(); assert(type(c1) == "number" and c1 >= 0)
        assert(os.difftime(10, 4) == 6)
        assert(os.execute == nil and os.exit == nil and os.remove == nil and os.getenv == nil and os.tmpname == nil)
        local ok = pcall(os.date, "%Q")
        assert(not ok)
        "##,
    );
}

#[test]
fn payload_global() {
    check(
        &[],
        r##"
        assert(payload.format.JSON == "json/plain" and payload.format.LUA == "lua/any" and payload.format.ERROR == "golang/error")
        local p = payload.new({a = 1, b = {"x", 2.5}})
        assert(p:get_format() == "lua/any" and tostring(p) == "payload{format=lua/any}")
        local d = p:data()
        assert(d.a == 1 and d.b[1] == "x" and d.b[2] == 2.5)
        local j = p:transcode(payload.format.JSON)
        assert(j:get_format() == "json/plain")
        local back = j:transcode(payload.format.LUA):data()
        assert(back.a == 1 and back.b[2] == 2.5)
        local s = j:transcode(payload.format.STRING):data()
        assert(s == '{"a":1,"b":["x",2.5]}', s)
        local m = p:transcode(payload.format.MSGPACK)
        assert(m:data().b[1] == "x")
        local y = p:transcode(payload.format.YAML):data()
        assert(y.a == 1)
        local ep = payload.new(errors.new({message = "boom", kind = errors.TIMEOUT}))
        assert(ep:get_format() == "golang/error")
        local e = ep:data()
        assert(e:kind() == errors.TIMEOUT and e:message() == "boom")
        local bad, err = p:transcode("nope/format")
        assert(bad == nil and err:kind() == errors.INVALID)
        assert(payload.new("text"):transcode(payload.format.BYTES):data() == "text")
        assert(p:unmarshal().a == 1)
        "##,
    );
}

#[test]
fn env_module() {
    use std::sync::Arc;
    wippy::lua::modules::env::set_provider(Arc::new(wippy::lua::modules::env::MapEnv::new(
        [
            ("APP_MODE".to_string(), "prod".to_string()),
            ("EMPTY".to_string(), String::new()),
        ],
        vec!["APP_MODE".to_string()],
    )));
    check(
        &["env"],
        r##"
        local v, e = env.get("APP_MODE")
        assert(v == "prod" and e == nil)
        v, e = env.get("MISSING"); assert(v == nil and e:kind() == errors.NOT_FOUND)
        v, e = env.get("EMPTY"); assert(v == nil and e:kind() == errors.NOT_FOUND)
        v, e = env.get(""); assert(v == nil and e:kind() == errors.INVALID)
        v, e = env.get(5); assert(v == nil and e:kind() == errors.INVALID)
        local ok, err = env.set("APP_MODE", "dev"); assert(ok == nil and err:kind() == errors.PERMISSION_DENIED)
        ok, err = env.set("COUNT", 3); assert(ok == true and err == nil)
        assert(env.get("COUNT") == "3")
        local all = env.get_all(); assert(all.COUNT == "3" and all.APP_MODE == "prod")
        "##,
    );
}

#[test]
fn crypto_module() {
    check(
        &["crypto", "base64", "hash"],
        r##"
        local b = crypto.random.bytes(32); assert(#b == 32)
        assert(crypto.random.bytes(32) ~= b)
        local v, e = crypto.random.bytes(0); assert(v == nil and e:kind() == errors.INVALID)
        v, e = crypto.random.bytes(2 * 1024 * 1024); assert(v == nil and e:kind() == errors.INVALID)
        local s = crypto.random.string(40); assert(#s == 40 and s:match("^[%w]+$"))
        s = crypto.random.string(50, "ab"); assert(#s == 50 and s:match("^[ab]+$"))
        assert(crypto.random.uuid():match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"))
        -- HMAC: key first
        assert(crypto.hmac.sha256("key", "The quick brown fox jumps over the lazy dog") ==
            hash.hmac_sha256("The quick brown fox jumps over the lazy dog", "key"))
        assert(#crypto.hmac.sha512("k", "d") == 128)
        -- AES-GCM and ChaCha20-Poly1305 round trips
        for _, klen in ipairs({16, 24, 32}) do
            local key = crypto.random.bytes(klen)
            local ct = crypto.encrypt.aes("secret data", key, "aad")
            assert(#ct == 12 + #"secret data" + 16)
            assert(crypto.decrypt.aes(ct, key, "aad") == "secret data")
            local pt, err = crypto.decrypt.aes(ct, key, "other aad")
            assert(pt == nil and err:kind() == errors.INVALID)
        end
        local k32 = crypto.random.bytes(32)
        local c = crypto.encrypt.chacha20("hello", k32)
        assert(crypto.decrypt.chacha20(c, k32) == "hello")
        v, e = crypto.encrypt.aes("x", "short"); assert(v == nil and e:kind() == errors.INVALID)
        v, e = crypto.encrypt.chacha20("x", crypto.random.bytes(16)); assert(v == nil and e:kind() == errors.INVALID)
        local tampered = c:sub(1, -2) .. string.char((c:byte(-1) + 1) % 256)
        v, e = crypto.decrypt.chacha20(tampered, k32); assert(v == nil)
        -- JWT
        local tok = crypto.jwt.encode({sub = "u1", exp = os.time() + 60, _header = {kid = "k1"}}, "secret")
        local parts = {}; for p in tok:gmatch("[^.]+") do parts[#parts + 1] = p end
        assert(#parts == 3)
        local claims, cerr = crypto.jwt.verify(tok, "secret")
        assert(claims and claims.sub == "u1", tostring(cerr))
        v, e = crypto.jwt.verify(tok, "wrong"); assert(v == nil and e:message():find("signature"))
        v, e = crypto.jwt.verify(tok, "secret", "HS512"); assert(v == nil and e:message():find("algorithm"))
        local expired = crypto.jwt.encode({sub = "u", exp = os.time() - 10}, "s")
        v, e = crypto.jwt.verify(expired, "s"); assert(v == nil and e:message():find("expired"))
        local noexp = crypto.jwt.encode({sub = "u"}, "s", "HS384")
        v, e = crypto.jwt.verify(noexp, "s", "HS384"); assert(v == nil and e:message():find("expiration"))
        assert(crypto.jwt.verify(noexp, "s", "HS384", false).sub == "u")
        -- RFC 6070 PBKDF2-HMAC-SHA1 has no sha1 option; check SHA-256 vector instead
        local dk = crypto.pbkdf2("password", "salt", 1, 32)
        assert(hash.sha256("x") and #dk == 32)
        local hexdk = dk:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)
        assert(hexdk == "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b", hexdk)
        assert(#crypto.pbkdf2("p", "s", 10, 64, "sha512") == 64)
        v, e = crypto.pbkdf2("p", "s", 0, 16); assert(v == nil and e:kind() == errors.INVALID)
        assert(crypto.constant_time_compare("abc", "abc") and not crypto.constant_time_compare("abc", "abd"))
        assert(not crypto.constant_time_compare("abc", "ab"))
        "##,
    );
}

#[test]
fn json_schema_validation() {
    check(
        &["json"],
        r##"
        local schema = {
            type = "object",
            required = {"name", "items"},
            properties = {
                name = {type = "string", minLength = 1},
                items = {type = "array", items = {type = "integer", minimum = 0}, minItems = 1},
                mode = {enum = {"fast", "slow"}},
            },
            additionalProperties = false,
        }
        local ok, err = json.validate(schema, {name = "n", items = {1, 2}, mode = "fast"})
        assert(ok == true and err == nil, tostring(err))
        ok, err = json.validate(schema, {name = "n", items = {1, -2}})
        assert(ok == false and err:kind() == errors.INVALID and err:message():find("/items/1"), err and err:message())
        ok, err = json.validate(schema, {items = {1}})
        assert(not ok and err:message():find("name"))
        ok, err = json.validate(schema, {name = "n", items = {1}, other = true})
        assert(not ok and err:message():find("other"))
        local text = '{"type": "object", "properties": {"n": {"type": "number", "maximum": 10}}}'
        assert(json.validate(text, {n = 3}) == true)
        ok, err = json.validate(text, {n = 30}); assert(not ok)
        assert(json.validate_string(text, '{"n": 1}') == true)
        ok, err = json.validate_string(text, '{"n": 11}'); assert(not ok)
        ok, err = json.validate_string(text, 'not json'); assert(not ok and err:kind() == errors.INVALID)
        ok, err = json.validate(nil, {}); assert(not ok and err:kind() == errors.INVALID)
        ok, err = json.validate(schema, nil); assert(not ok and err:kind() == errors.INVALID)
        ok, err = json.validate("{bad", {}); assert(not ok and err:kind() == errors.INVALID)
        -- an empty Lua table satisfies an object schema
        assert(json.validate({type = "object"}, {}) == true)
        "##,
    );
}

#[test]
fn crypto_jwt_rs256() {
    // Test-only key pair and a token signed by `openssl dgst -sha256 -sign` (interoperability).
    const PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCjCBSEjpk/3TSE\n8vOoN4YBdqIVYJYysls00e9Bvsj6a5ZtKHzgmMPHZ0tKcbJfVlAnQtpPPFVDiUUJ\nP87h/52vgk8tO4ldPRhzFuPCYbTuh9Uuh2TRrQvw7TMTEbru3Ti/pYsBjMpPNQXL\noWlQ/sEyKTDK77VBCPLSxtACAbzf5tMUCocLAXhOYV7MXcRXSLG6a1tyJpw6p3po\n+Fcjx8yxj7QK4dmf2lhqyLPTinWJmwUk28vuN1YRQqAHYaSp6EMhciOb7I2GnHST\nOACF29kJuwO80YWU/6TNNfo6eKQ0d6ZMOCNx+By35iadgV0TVu035ImTXH1STt6w\n5aOd6P6hAgMBAAECggEAIAsJhVhFtLC0juD1lP18wDLh/pOiUcqOdJ5CiUiHVfjp\ncwD/MmG0MTATM0mPhn9/d4gDQomYNJL5V60L642DH6jcCQbno8TLVmuMTntHxY47\nD08bOL7rVuo4HKpidGpUqg5OePqEFPdV8UUDXyEDNem0pl5g4KxylYzv+0T+K39x\nPGzdtYqkTdZ+6FSVt0b3jRNhLKA/S5VQ7TFHS7nAT/4hdGLaOyrWTBCs0oqLNsaU\nbhYGRmLFSe2nVV9xgwR/oxf4IfnoLuQNEUxJLrtGcR+wx5eP3B6g2JEZifwnRrJE\nt3hISaSQTDZQM+eRUin0i+DI3TcRxZ4ev3/z9RO+MQKBgQDb9dsWGbtO1YVRxSee\nmq4jDkGnOr02Kbni4xSKyCU+U+d1hm44IgYu83rO+N+vK8daD9NSmUsbRlrf9ECy\nIMzhFHbqrkoyj2mxNemSISZEogAlf0N+/mk6S657/RmyA9UcBJfR5bx6yzJaaxbT\npC4McYw15GvBkBUt9601UtZt3QKBgQC9vl6etGmFddzPqPVG6NmfJbwm+Fy9iTb1\nGcUaTfr+5hrZmwrmtoxoIaWZ53V1COiIOrm5neFTPm9yRD4LqtVVTK+i2+fVHd5w\nBl6UVTzwjdiaFgm73hDDM2ec3T7N4ftUfEXqXLyJuOXfWfNYulGL5S7qAxbVJPFc\nWFboqIbxlQKBgD6lGb2EnJUKOMseFHeWZCv1vnsLPqIzZg6ZT9tqvziuGsic/b0c\n65fpnjteJA62sDMVOMFYiUx+UBlibh6NOuyLsIaMFvOpZpei3B/TMxvu643CXg3I\nFV4V+d60KeJKNyKgqECOZoyuXGvl/f1O0BKZMC6VHJ9nErEhzgHW0t09AoGAQAWY\n5ZHYPPjs3YCT6i4tJ77Swo9ws182FPNyBxMiypkXnC7tObWEoKoht1Fa13d/BmBS\nRGgaHD1n2zVdfhBRVSu/44Kxsb4XTNNJXGF6Y2xpFmyzMhmWrFaO8mXQiCVk6TfZ\nW1+ZGhsyLO+r5VdQppRZBQqvzJFfgxonkO80QRUCgYEAzY89nEgDZ2f8onQs+EvR\nfmBpASpMfvd7+5FEZuhUyQJGHQVHVs/byGywBOGMZTIEobSkvzEhK+PP3D+emLCd\noAmDJcpWjF6H3TWlEAkRUv9kJVX2JV4+fMrhQCVCuKZy2qjujczxMSVdkwYSQQj7\n9ItRPTg0uOUqCwiqPhvj/iE=\n-----END PRIVATE KEY-----";
    const PUB: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAowgUhI6ZP900hPLzqDeG\nAXaiFWCWMrJbNNHvQb7I+muWbSh84JjDx2dLSnGyX1ZQJ0LaTzxVQ4lFCT/O4f+d\nr4JPLTuJXT0YcxbjwmG07ofVLodk0a0L8O0zExG67t04v6WLAYzKTzUFy6FpUP7B\nMikwyu+1QQjy0sbQAgG83+bTFAqHCwF4TmFezF3EV0ixumtbciacOqd6aPhXI8fM\nsY+0CuHZn9pYasiz04p1iZsFJNvL7jdWEUKgB2GkqehDIXIjm+yNhpx0kzgAhdvZ\nCbsDvNGFlP+kzTX6OnikNHemTDgjcfgct+YmnYFdE1btN+SJk1x9Uk7esOWjnej+\noQIDAQAB\n-----END PUBLIC KEY-----";
    const EXTERNAL: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJleHQiLCJleHAiOjQxMDI0NDQ4MDB9.KWa8K2lsxW24-wFo2YB3GgPtnN06T4yO_jPVGAvm4QcYWLO8AgBkoOzFwYBvRaNGRtF85fUwxAEK39bR3fKiilMYp9u8c1Nq8nrvB2uBRaPIZLGEg8EA05s3kWk7C5FcVlZF_XC-A-h57A6ThNMjQ1UPjM1OShbGBKlil8VKVpeNlBtacuv7lIfjvOXn8BE97-TGKYKe2knUxRGvvoeQ1awoq4kGHIdPzMh7iX9IlWOgZlcBLyt_UwIrQmMUq5oOW6GFnlbYlF0ji6BZbMgIM37nNGClgrqtzFSA4DODNUlOD7BeYanu0vqhs5RVsbSh4R4UKKz97ZaH_l19lSPxzQ";
    let mut st = FACTORY.acquire(&["crypto"]).unwrap();
    st.bind_global(
        "PRIV",
        mlua::Value::String(st.lua().create_string(PRIV).unwrap()),
    )
    .unwrap();
    st.bind_global(
        "PUB",
        mlua::Value::String(st.lua().create_string(PUB).unwrap()),
    )
    .unwrap();
    st.bind_global(
        "EXTERNAL",
        mlua::Value::String(st.lua().create_string(EXTERNAL).unwrap()),
    )
    .unwrap();
    let f = st
        .load_chunk(
            "test:rs256",
            r##"
            local tok, err = crypto.jwt.encode({sub = "u1", exp = os.time() + 60}, PRIV, "RS256")
            assert(tok, tostring(err))
            local c, verr = crypto.jwt.verify(tok, PUB, "RS256")
            assert(c and c.sub == "u1", tostring(verr))
            assert(crypto.jwt.verify(tok, PRIV, "RS256").sub == "u1", "private key verifies too")
            local ext = crypto.jwt.verify(EXTERNAL, PUB, "RS256")
            assert(ext and ext.sub == "ext", "token signed by openssl verifies")
            local bad = EXTERNAL:sub(1, -3) .. (EXTERNAL:sub(-2, -2) == "A" and "BB" or "AA")
            local v, e = crypto.jwt.verify(bad, PUB, "RS256")
            assert(v == nil and e:message():find("signature"), e and e:message())
            v, e = crypto.jwt.verify(tok, PUB)  -- default HS256 expected: algorithm mismatch
            assert(v == nil and e:message():find("algorithm"))
            v, e = crypto.jwt.encode({sub = "x"}, "not a pem", "RS256")
            assert(v == nil and e:kind() == errors.INVALID)
            "##,
        )
        .unwrap();
    if let Err(e) = f.call::<()>(()) {
        panic!("{e}");
    }
    FACTORY.release(st);
}
