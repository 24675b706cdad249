//! Time zones from the browser's own database (`Intl`), so the `.wasm` carries none.

use crate::zone::{parse_gmt_offset, ZoneRules};
use chrono::{DateTime, FixedOffset, Offset, Utc};
use js_sys::{Array, Intl, Object, Reflect};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// An IANA zone as the browser knows it. Offsets are cached per quarter hour: zones change
/// offset only on quarter-hour boundaries.
pub struct IntlZone {
    format: Intl::DateTimeFormat,
    cache: RefCell<HashMap<i64, FixedOffset>>,
}

const QUARTER_HOUR: i64 = 15 * 60;

thread_local! {
    static BUILT: RefCell<HashMap<String, Rc<IntlZone>>> = RefCell::new(HashMap::new());
}

impl IntlZone {
    /// Fails when the browser does not know the zone, or gives no offset for it that can be
    /// read: such a zone is refused, never read as UTC.
    pub fn new(name: &str) -> Result<IntlZone, JsValue> {
        let options = Object::new();
        Reflect::set(&options, &"timeZone".into(), &name.into())?;
        Reflect::set(&options, &"timeZoneName".into(), &"longOffset".into())?;
        let locales = Array::of1(&"en-US".into());
        // The constructor throws a RangeError for an unknown zone; `Reflect.construct` turns
        // that into an `Err` instead of an exception escaping through the wasm stack.
        let constructor: js_sys::Function = Reflect::get(
            &Intl::DateTimeFormat::new(&Array::new(), &Object::new()),
            &"constructor".into(),
        )?
        .dyn_into()?;
        let format: Intl::DateTimeFormat =
            Reflect::construct(&constructor, &Array::of2(&locales, &options))?.dyn_into()?;
        let zone = IntlZone {
            format,
            cache: RefCell::new(HashMap::new()),
        };
        match zone.ask_browser(super::browser::now()) {
            Some(_) => Ok(zone),
            None => Err(JsValue::from_str("no readable offset")),
        }
    }

    /// The zone named `name`, built once per page: building asks the browser's `Intl` and reads
    /// an offset, and the desk asks for Koha's zone on every scan it checks.
    pub fn named(name: &str) -> Result<Rc<IntlZone>, JsValue> {
        if let Some(zone) = BUILT.with(|built| built.borrow().get(name).cloned()) {
            return Ok(zone);
        }
        let zone = Rc::new(IntlZone::new(name)?);
        BUILT.with(|built| built.borrow_mut().insert(name.to_owned(), zone.clone()));
        Ok(zone)
    }

    /// The browser's own zone name, e.g. `Europe/Berlin`.
    pub fn browser_zone() -> String {
        let format = Intl::DateTimeFormat::new(&Array::new(), &Object::new());
        Reflect::get(&format.resolved_options(), &"timeZone".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| "UTC".to_owned())
    }

    fn ask_browser(&self, at: DateTime<Utc>) -> Option<FixedOffset> {
        let date = js_sys::Date::new(&JsValue::from_f64(at.timestamp_millis() as f64));
        let parts = self.format.format_to_parts(&date);
        let name = parts.iter().find_map(|part| {
            let kind = Reflect::get(&part, &"type".into()).ok()?.as_string()?;
            (kind == "timeZoneName")
                .then(|| Reflect::get(&part, &"value".into()).ok()?.as_string())
                .flatten()
        })?;
        parse_gmt_offset(&name)
    }
}

impl ZoneRules for IntlZone {
    fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
        let bucket = instant.timestamp().div_euclid(QUARTER_HOUR);
        if let Some(offset) = self.cache.borrow().get(&bucket) {
            return *offset;
        }
        let offset = self.ask_browser(instant).unwrap_or_else(|| Utc.fix());
        self.cache.borrow_mut().insert(bucket, offset);
        offset
    }
}
