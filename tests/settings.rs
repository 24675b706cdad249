//! Connection settings: URL normalisation, form validation, secrets and managed presets.

use koha_offline_circ::settings::{
    enforce_managed, merge_managed, KohaUrl, ManagedSettings, Mode, Settings, SettingsError,
    SettingsField, SettingsForm, UrlError,
};
use koha_offline_circ::zone::TimezoneName;

#[test]
fn urls_are_normalised() {
    let cases = [
        ("https://koha.example.org", "https://koha.example.org"),
        ("  https://koha.example.org/  ", "https://koha.example.org"),
        ("HTTPS://Koha.Example.ORG///", "https://koha.example.org"),
        (
            "https://bibliothek.example.org:8080",
            "https://bibliothek.example.org:8080",
        ),
        ("https://koha.example.org:443/", "https://koha.example.org"),
        (
            "https://koha.example.org/cgi-bin/koha/mainpage.pl",
            "https://koha.example.org",
        ),
        (
            "https://koha.example.org:8443/intranet/cgi-bin/koha/circ/circulation.pl?borrowernumber=5#x",
            "https://koha.example.org:8443/intranet",
        ),
        ("https://koha.example.org/cgi-bin", "https://koha.example.org"),
        (
            "https://koha.example.org/Staff//Koha/",
            "https://koha.example.org/Staff/Koha",
        ),
        ("https://koha.example.org?lang=de", "https://koha.example.org"),
        ("https://koha.example.org#top", "https://koha.example.org"),
        // Found by proptest in CI: '@' after the host is path, not userinfo.
        ("HTTPS://a/@#", "https://a/@"),
        ("http://localhost:8081", "http://localhost:8081"),
        ("http://127.0.0.1:8081/", "http://127.0.0.1:8081"),
        ("http://[::1]:8081/", "http://[::1]:8081"),
        ("http://LOCALHOST", "http://localhost"),
        ("https://10.0.0.5:8443", "https://10.0.0.5:8443"),
        ("https://koha.example.org.", "https://koha.example.org."),
        (
            "https://koha.example.org/~staff/k%C3%B6ha",
            "https://koha.example.org/~staff/k%C3%B6ha",
        ),
    ];
    for (input, expected) in cases {
        let url = KohaUrl::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(url.as_str(), expected, "input {input:?}");
        assert_eq!(url.to_string(), expected);
    }
}

#[test]
fn bad_urls_are_refused_each_with_its_kind() {
    let cases = [
        ("", "empty"),
        ("   ", "empty"),
        ("javascript:alert(1)", "unsupported-scheme"),
        ("JavaScript:alert(1)", "unsupported-scheme"),
        ("ftp://koha.example.org", "unsupported-scheme"),
        ("file:///etc/passwd", "unsupported-scheme"),
        ("data:text/html,hi", "unsupported-scheme"),
        ("http://koha.example.org", "http-not-allowed"),
        ("http://127.0.0.2", "http-not-allowed"),
        ("http://localhost.example.org", "http-not-allowed"),
        ("https://koha example.org", "space"),
        ("https://koha.example.org/a b", "space"),
        ("https://koha.example.org/\u{7}", "control-character"),
        ("https://user:pw@koha.example.org", "userinfo"),
        ("https://user@koha.example.org", "userinfo"),
        ("koha.example.org", "missing-scheme"),
        ("localhost:8080", "missing-scheme"),
        ("//koha.example.org", "missing-scheme"),
        ("https://", "missing-host"),
        ("https:///cgi-bin/koha", "missing-host"),
        ("https://:8080", "missing-host"),
        ("https:koha.example.org", "missing-host"),
        ("https://koha..example.org", "invalid-host"),
        ("https://bücherei.example.org", "invalid-host"),
        ("https://koha_example!.org", "invalid-host"),
        ("https://[zz::1]", "invalid-host"),
        ("https://koha.example.org:0", "invalid-port"),
        ("https://koha.example.org:65536", "invalid-port"),
        ("https://koha.example.org:80a", "invalid-port"),
        ("https://koha.example.org/../admin", "invalid-path"),
        ("https://koha.example.org\\evil.org", "invalid-path"),
        ("https://koha.example.org/<script>", "invalid-path"),
        ("https://koha.example.org/ä", "invalid-path"),
    ];
    for (input, kind) in cases {
        let err = KohaUrl::parse(input).expect_err(input);
        assert_eq!(err.kind(), kind, "input {input:?}");
    }
}

#[test]
fn url_error_messages_are_api() {
    assert_eq!(
        KohaUrl::parse("ftp://x.org").unwrap_err().to_string(),
        "server address uses the unsupported scheme \"ftp\""
    );
    assert_eq!(
        KohaUrl::parse("http://koha.example.org")
            .unwrap_err()
            .to_string(),
        "http:// is only allowed for localhost; use https://"
    );
    assert_eq!(
        KohaUrl::parse("https://a:b@c.org").unwrap_err(),
        UrlError::Userinfo
    );
}

#[test]
fn origin_pattern_has_no_port_and_endpoints_keep_the_prefix() {
    let url = KohaUrl::parse("https://Koha.Example.org:8443/lib/").unwrap();
    assert_eq!(url.origin_pattern(), "https://koha.example.org/*");
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host(), "koha.example.org");
    assert_eq!(url.port(), Some(8443));
    assert_eq!(
        url.service_url(),
        "https://koha.example.org:8443/lib/cgi-bin/koha/offline_circ/service.pl"
    );
    assert_eq!(
        url.auth_url(),
        "https://koha.example.org:8443/lib/cgi-bin/koha/svc/authentication"
    );
    let local = KohaUrl::parse("http://[::1]:8081").unwrap();
    assert_eq!(local.origin_pattern(), "http://[::1]/*");
    let plain = KohaUrl::parse("https://koha.example.org").unwrap();
    assert_eq!(plain.port(), None);
    assert_eq!(
        plain.service_url(),
        "https://koha.example.org/cgi-bin/koha/offline_circ/service.pl"
    );
}

#[test]
fn stored_urls_are_validated_again() {
    let url: KohaUrl = serde_json::from_str("\"https://koha.example.org/\"").unwrap();
    assert_eq!(url.as_str(), "https://koha.example.org");
    assert_eq!(
        serde_json::to_string(&url).unwrap(),
        "\"https://koha.example.org\""
    );
    assert!(serde_json::from_str::<KohaUrl>("\"javascript:alert(1)\"").is_err());
}

#[test]
fn timezone_shape() {
    for ok in [
        "UTC",
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+5",
        "America/Port-au-Prince",
        " Europe/Paris ",
    ] {
        assert!(TimezoneName::parse(ok).is_ok(), "{ok:?}");
    }
    let cases = [
        ("", "empty"),
        ("Europe/ Berlin", "space"),
        ("Europe/Ber\u{0}lin", "control-character"),
        ("Berlin", "shape"),
        ("utc", "shape"),
        ("Europe/", "shape"),
        ("/Berlin", "shape"),
        ("Europe//Berlin", "shape"),
        ("Europe/Berlin;drop", "shape"),
        ("../etc/passwd", "shape"),
    ];
    for (input, kind) in cases {
        assert_eq!(
            TimezoneName::parse(input).unwrap_err().kind(),
            kind,
            "{input:?}"
        );
    }
    assert_eq!(
        TimezoneName::parse(&format!("Area/{}", "x".repeat(70)))
            .unwrap_err()
            .kind(),
        "too-long"
    );
}

fn form() -> SettingsForm {
    SettingsForm {
        server: "https://koha.example.org/".into(),
        branchcode: " DE-627 ".into(),
        userid: "desk1".into(),
        password: " pass word ".into(),
        remember_password: true,
        mode: "apply".into(),
        timezone: "Europe/Berlin".into(),
        sounds: true,
        login_once: true,
        in_flight: 2,
    }
}

#[test]
fn a_valid_form_parses() {
    let s = Settings::from_form(&form()).unwrap();
    assert_eq!(s.server.as_str(), "https://koha.example.org");
    assert_eq!(s.branchcode.as_str(), "DE-627");
    assert_eq!(s.userid.as_ref().unwrap().as_str(), "desk1");
    assert!(s.remember_password());
    // Passwords are opaque: never trimmed.
    assert_eq!(s.password(), Some(" pass word "));
    assert_eq!(s.mode, Mode::Apply);
    assert_eq!(s.timezone.as_str(), "Europe/Berlin");
    assert!(s.sounds);
    assert_eq!(s.in_flight, 2);
    assert_eq!(s.detected_transport, None);
}

#[test]
fn requests_in_flight_default_to_three_and_stay_within_one_to_four() {
    let with = |n: u8| {
        Settings::from_form(&SettingsForm {
            in_flight: n,
            ..form()
        })
        .unwrap()
    };
    assert_eq!(with(0).in_flight, 3, "not given");
    assert_eq!(with(1).in_flight, 1);
    assert_eq!(with(4).in_flight, 4);
    assert_eq!(with(200).in_flight, 4);
    assert_eq!(with(4).to_form().in_flight, 4);
    assert_eq!(SettingsForm::initial("UTC").in_flight, 3);
    // Settings saved before the setting existed get the default.
    let mut stored = serde_json::to_value(with(1)).unwrap();
    stored.as_object_mut().unwrap().remove("inFlight");
    let old: Settings = serde_json::from_value(stored).unwrap();
    assert_eq!(old.in_flight, 3);
}

#[test]
fn defaults_empty_userid_and_mode() {
    let s = Settings::from_form(&SettingsForm {
        userid: "  ".into(),
        password: String::new(),
        mode: String::new(),
        ..form()
    })
    .unwrap();
    assert_eq!(s.userid, None);
    assert_eq!(s.password(), None);
    assert_eq!(s.mode, Mode::Queue);
    assert_eq!(Mode::default(), Mode::Queue);
    assert_eq!(serde_json::to_string(&Mode::Queue).unwrap(), "\"queue\"");
    assert_eq!(
        serde_json::from_str::<Mode>("\"apply\"").unwrap(),
        Mode::Apply
    );
}

#[test]
fn every_invalid_field_is_reported() {
    let bad = SettingsForm {
        server: "javascript:alert(1)".into(),
        branchcode: "".into(),
        userid: "x".repeat(31),
        password: "pw".into(),
        remember_password: true,
        mode: "later".into(),
        timezone: "Berlin".into(),
        sounds: false,
        login_once: true,
        in_flight: 4,
    };
    let errors = Settings::from_form(&bad).unwrap_err();
    assert_eq!(
        errors.fields(),
        vec![
            (SettingsField::Server, "unsupported-scheme"),
            (SettingsField::Branchcode, "empty"),
            (SettingsField::Userid, "too-long"),
            (SettingsField::Mode, "unknown-mode"),
            (SettingsField::Timezone, "shape"),
        ]
    );
    assert_eq!(
        errors.to_string(),
        "server address uses the unsupported scheme \"javascript\"; branchcode is empty; \
         userid is longer than 30 characters; mode must be queue or apply, not \"later\"; \
         time zone must be UTC or look like Area/Location"
    );
    assert_eq!(
        errors.get(SettingsField::Branchcode).unwrap().to_string(),
        "branchcode is empty"
    );
    assert!(errors.get(SettingsField::Password).is_none());
}

#[test]
fn one_bad_field_is_enough_to_refuse() {
    for (edit, field, kind) in [
        (
            Box::new(|f: &mut SettingsForm| f.server = "ftp://x.org".into())
                as Box<dyn Fn(&mut SettingsForm)>,
            SettingsField::Server,
            "unsupported-scheme",
        ),
        (
            Box::new(|f: &mut SettingsForm| f.branchcode = "DE-627-XYZ1".into()),
            SettingsField::Branchcode,
            "too-long",
        ),
        (
            Box::new(|f: &mut SettingsForm| f.userid = "de\tsk".into()),
            SettingsField::Userid,
            "control-character",
        ),
        (
            Box::new(|f: &mut SettingsForm| f.userid = String::new()),
            SettingsField::Userid,
            "password-without-userid",
        ),
        (
            Box::new(|f: &mut SettingsForm| f.timezone = String::new()),
            SettingsField::Timezone,
            "empty",
        ),
    ] {
        let mut f = form();
        edit(&mut f);
        let errors = Settings::from_form(&f).unwrap_err();
        assert_eq!(errors.fields(), vec![(field, kind)]);
        assert_eq!(errors.errors().len(), 1);
    }
}

#[test]
fn password_without_remember_is_not_kept() {
    let s = Settings::from_form(&SettingsForm {
        remember_password: false,
        password: "hunter2-secret".into(),
        ..form()
    })
    .unwrap();
    assert_eq!(s.password(), None);
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("hunter2-secret"), "{json}");
    assert!(!s.to_storage().to_string().contains("hunter2-secret"));
    assert!(!format!("{s:?}").contains("hunter2-secret"));
}

#[test]
fn remembered_password_is_stored_only_then() {
    let mut s = Settings::from_form(&SettingsForm {
        password: "hunter2-secret".into(),
        ..form()
    })
    .unwrap();
    let stored = s.to_storage();
    assert!(stored.to_string().contains("hunter2-secret"));
    assert_eq!(stored["password"], "hunter2-secret");
    assert_eq!(stored["rememberPassword"], true);
    // Round trip through storage.
    let back: Settings = serde_json::from_value(stored).unwrap();
    assert_eq!(back, s);
    // Never in a log or in what leaves the options page.
    assert!(!format!("{s:?}").contains("hunter2-secret"));
    let public = s.without_secret();
    assert!(!serde_json::to_string(&public)
        .unwrap()
        .contains("hunter2-secret"));
    assert_eq!(public.server, s.server);
    // Turning remembering off drops it.
    s.set_remember_password(false);
    assert_eq!(s.password(), None);
    assert!(!s.remember("again"));
    assert!(!s.to_storage().to_string().contains("hunter2-secret"));
}

#[test]
fn a_stored_password_without_remember_is_dropped_on_load() {
    let json = serde_json::json!({
        "server": "https://koha.example.org",
        "branchcode": "DE-627",
        "userid": "desk1",
        "rememberPassword": false,
        "password": "leaked",
        "timezone": "UTC"
    });
    let s: Settings = serde_json::from_value(json).unwrap();
    assert_eq!(s.password(), None);
    assert_eq!(s.mode, Mode::Queue);
    assert!(!s.to_storage().to_string().contains("leaked"));
}

#[test]
fn invalid_stored_settings_are_refused() {
    let json = serde_json::json!({
        "server": "http://koha.example.org",
        "branchcode": "DE-627",
        "timezone": "UTC"
    });
    assert!(serde_json::from_value::<Settings>(json).is_err());
    let json = serde_json::json!({
        "server": "https://koha.example.org",
        "branchcode": "",
        "timezone": "UTC"
    });
    assert!(serde_json::from_value::<Settings>(json).is_err());
}

#[test]
fn forget_credentials_clears_user_and_password() {
    let mut s = Settings::from_form(&SettingsForm {
        password: "hunter2-secret".into(),
        ..form()
    })
    .unwrap();
    s.forget_credentials();
    assert_eq!(s.userid, None);
    assert_eq!(s.password(), None);
    assert!(!s.remember_password());
    let json = s.to_storage().to_string();
    assert!(!json.contains("hunter2-secret"), "{json}");
    assert!(!json.contains("desk1"), "{json}");
    // Settings stay otherwise intact.
    assert_eq!(s.branchcode.as_str(), "DE-627");
}

#[test]
fn remember_needs_a_user() {
    let mut s = Settings::from_form(&SettingsForm {
        password: String::new(),
        ..form()
    })
    .unwrap();
    assert!(s.remember("pw1"));
    assert_eq!(s.password(), Some("pw1"));
    assert!(s.remember(""));
    assert_eq!(s.password(), None);
    s.userid = None;
    assert!(!s.remember("pw2"));
    assert_eq!(s.password(), None);
}

#[test]
fn re_saving_keeps_transport_and_remembered_password() {
    let mut previous = Settings::from_form(&SettingsForm {
        password: "pw".into(),
        ..form()
    })
    .unwrap();
    previous.detected_transport = Some("P1".into());
    // The page shows the form without the password; the admin changes only the mode.
    let mut shown = previous.to_form();
    assert_eq!(shown.password, "");
    shown.mode = "queue".into();
    let mut next = Settings::from_form(&shown).unwrap();
    next.carry_over(&previous);
    assert_eq!(next.password(), Some("pw"));
    assert_eq!(next.detected_transport.as_deref(), Some("P1"));
    assert_eq!(next.mode, Mode::Queue);

    // Another server: neither carries over.
    shown.server = "https://other.example.org".into();
    let mut moved = Settings::from_form(&shown).unwrap();
    moved.carry_over(&previous);
    assert_eq!(moved.password(), None);
    assert_eq!(moved.detected_transport, None);

    // Another user: the old password does not carry over.
    let mut other_user = previous.to_form();
    other_user.userid = "desk2".into();
    let mut next = Settings::from_form(&other_user).unwrap();
    next.carry_over(&previous);
    assert_eq!(next.password(), None);
    assert_eq!(next.detected_transport.as_deref(), Some("P1"));
}

#[test]
fn a_connection_test_stores_its_transport_only_in_settings_for_its_server() {
    let saved = Settings::from_form(&form()).unwrap();
    let same = saved.server.clone();
    let other = KohaUrl::parse("https://other.example.org").unwrap();
    let updated = saved.with_detected_transport(&same, "P2").unwrap();
    assert_eq!(updated.detected_transport.as_deref(), Some("P2"));
    assert_eq!(
        updated.with_detected_transport(&same, "P2"),
        None,
        "unchanged"
    );
    assert_eq!(saved.with_detected_transport(&other, "P2"), None);
}

#[test]
fn form_debug_hides_the_password() {
    let text = format!(
        "{:?}",
        SettingsForm {
            password: "hunter2-secret".into(),
            ..form()
        }
    );
    assert!(!text.contains("hunter2-secret"));
    assert!(text.contains("<redacted>"));
}

#[test]
fn managed_presets_override_and_lock() {
    let managed = ManagedSettings {
        server: Some("https://policy.example.org/cgi-bin/koha/mainpage.pl".into()),
        branchcode: Some("  ".into()),
    };
    let merged = merge_managed(&form(), &managed);
    assert_eq!(merged.locked, vec![SettingsField::Server]);
    assert_eq!(
        merged.form.server,
        "https://policy.example.org/cgi-bin/koha/mainpage.pl"
    );
    assert_eq!(merged.form.branchcode, " DE-627 ");
    let s = Settings::from_form(&merged.form).unwrap();
    assert_eq!(s.server.as_str(), "https://policy.example.org");

    let both = ManagedSettings {
        server: Some("https://policy.example.org".into()),
        branchcode: Some("FR-75".into()),
    };
    let merged = merge_managed(&form(), &both);
    assert_eq!(
        merged.locked,
        vec![SettingsField::Server, SettingsField::Branchcode]
    );
    assert_eq!(merged.form.branchcode, "FR-75");

    let none = merge_managed(&form(), &ManagedSettings::default());
    assert!(none.locked.is_empty());
    assert_eq!(none.form, form());
}

#[test]
fn managed_presets_parse_from_policy_json() {
    let managed: ManagedSettings =
        serde_json::from_str(r#"{"server":"https://policy.example.org"}"#).unwrap();
    assert_eq!(
        managed.server.as_deref(),
        Some("https://policy.example.org")
    );
    assert_eq!(managed.branchcode, None);
}

#[test]
fn an_invalid_preset_is_reported_on_its_locked_field() {
    let managed = ManagedSettings {
        server: Some("http://policy.example.org".into()),
        branchcode: None,
    };
    let merged = merge_managed(&form(), &managed);
    let errors = Settings::from_form(&merged.form).unwrap_err();
    assert_eq!(
        errors.fields(),
        vec![(SettingsField::Server, "http-not-allowed")]
    );
    assert!(matches!(
        errors.errors()[0],
        SettingsError::Server(UrlError::HttpNotAllowed)
    ));
}

#[test]
fn enforcing_presets_on_saved_settings() {
    let mut saved = Settings::from_form(&SettingsForm {
        password: "pw".into(),
        ..form()
    })
    .unwrap();
    saved.detected_transport = Some("P3".into());
    let managed = ManagedSettings {
        server: None,
        branchcode: Some("FR-75".into()),
    };
    let (enforced, locked) = enforce_managed(&saved, &managed).unwrap();
    assert_eq!(locked, vec![SettingsField::Branchcode]);
    assert_eq!(enforced.branchcode.as_str(), "FR-75");
    assert_eq!(enforced.password(), Some("pw"));
    assert_eq!(enforced.detected_transport.as_deref(), Some("P3"));
    assert_eq!(enforced.mode, Mode::Apply);

    let moved = ManagedSettings {
        server: Some("https://policy.example.org".into()),
        branchcode: None,
    };
    let (enforced, _) = enforce_managed(&saved, &moved).unwrap();
    assert_eq!(enforced.server.as_str(), "https://policy.example.org");
    assert_eq!(enforced.password(), None);
    assert_eq!(enforced.detected_transport, None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text: no panic, and an accepted URL is a fixpoint of normalisation.
        #[test]
        fn parsing_is_total_and_normal_forms_are_stable(
            raw in prop_oneof!["\\PC{0,60}", "(https?|HTTPS)://[a-z0-9.:/\\[\\]@?#%~-]{0,40}"],
        ) {
            if let Ok(url) = KohaUrl::parse(&raw) {
                let again = KohaUrl::parse(url.as_str()).unwrap();
                prop_assert_eq!(again, url.clone());
                prop_assert!(!url.as_str().ends_with('/'));
                let path = &url.as_str()[url.scheme().len() + 3..];
                prop_assert!(!path.split('/').any(|seg| seg.eq_ignore_ascii_case("cgi-bin")));
                prop_assert!(!url.as_str().contains(['?', '#', ' ']));
                // '@' is a legal path character, but never userinfo in the authority.
                let authority = path.split('/').next().unwrap_or_default();
                prop_assert!(!authority.contains('@'));
            }
        }

        /// Staff URLs built from parts keep host, port and prefix, and lose the pasted tail.
        #[test]
        fn built_urls_keep_their_parts(
            host in "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z][a-z0-9]{0,8}){1,3}",
            port in proptest::option::of(1u16..),
            prefix in proptest::collection::vec("[A-Za-z0-9_~-]{1,8}", 0..3),
            tail in prop_oneof![
                Just(String::new()),
                Just("/".to_owned()),
                Just("/cgi-bin/koha/mainpage.pl".to_owned()),
                Just("//cgi-bin/koha/circ/circulation.pl?borrowernumber=1#x".to_owned()),
            ],
        ) {
            let port_part = port.map(|p| format!(":{p}")).unwrap_or_default();
            let prefix_part: String = prefix.iter().map(|s| format!("/{s}")).collect();
            let raw = format!("https://{}{port_part}{prefix_part}{tail}", host.to_uppercase());
            let url = KohaUrl::parse(&raw).unwrap();
            let kept_port = port.filter(|&p| p != 443);
            let expected_port = kept_port.map(|p| format!(":{p}")).unwrap_or_default();
            prop_assert_eq!(url.as_str(), format!("https://{host}{expected_port}{prefix_part}"));
            prop_assert_eq!(url.origin_pattern(), format!("https://{host}/*"));
            prop_assert_eq!(url.port(), kept_port);
        }
    }
}
