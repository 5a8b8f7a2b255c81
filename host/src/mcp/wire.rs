//! Between the host's types and MCP's: results, log levels, timestamps, URIs.

#![allow(deprecated)] // logging: deprecated by SEP-2577 for 2026-07-28, still served to clients that opt in

use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, LoggingLevel};
use serde_json::{Value, json};

use crate::task::{LogLevel, TaskResult, TaskStatus};
use crate::tasks::ManagerError;

/// A launch refused: the manager's message, which names the subagent, the
/// grant or the limit.
pub(super) fn launch_error(err: ManagerError) -> String {
    format!("task: {err}")
}

pub(super) fn complete(value: Value) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::structured(value))
}

pub(super) fn complete_with_text(value: Value, text: String) -> CallToolResponse {
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    CallToolResponse::Complete(result)
}

/// A task's result as tools return it: the result's fields plus its id and
/// subagent.
pub(super) fn result_value(id: &str, subagent: &str, result: &TaskResult) -> Value {
    let mut value = serde_json::to_value(result).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut value {
        map.insert("task_id".into(), json!(id));
        map.insert("subagent".into(), json!(subagent));
        // Always there, so a client can rely on the shape.
        map.entry("limits_hit").or_insert_with(|| json!([]));
    }
    value
}

/// A finished task as a `task` call's result: its summary (or error) as the
/// text, the whole result as structured content; an error unless completed.
pub(super) fn task_call_result(id: &str, subagent: &str, result: &TaskResult) -> CallToolResult {
    let value = result_value(id, subagent, result);
    let text = match (&result.summary, &result.error) {
        (_, Some(error)) if result.status != TaskStatus::Completed => {
            format!(
                "task {id} ({subagent}) {}: {}",
                result.status, error.message
            )
        }
        (Some(summary), _) => summary.clone(),
        (None, _) => format!("task {id} ({subagent}) {}", result.status),
    };
    let mut call = if result.status == TaskStatus::Completed {
        CallToolResult::structured(value)
    } else {
        CallToolResult::structured_error(value)
    };
    call.content = vec![ContentBlock::text(text)];
    call
}

pub(super) fn logging_level(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Trace | LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Warn => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
    }
}

pub(super) fn level_at_least(level: LoggingLevel, least: LoggingLevel) -> bool {
    fn rank(level: LoggingLevel) -> u8 {
        match level {
            LoggingLevel::Debug => 0,
            LoggingLevel::Info => 1,
            LoggingLevel::Notice => 2,
            LoggingLevel::Warning => 3,
            LoggingLevel::Error => 4,
            LoggingLevel::Critical => 5,
            LoggingLevel::Alert => 6,
            LoggingLevel::Emergency => 7,
        }
    }
    rank(level) >= rank(least)
}

/// `file://` URIs percent-encode; the path they name does not.
pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Milliseconds since the Unix epoch as an ISO 8601 UTC timestamp.
pub(super) fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_796_083_200_123), "2026-12-01T00:00:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn root_uris_are_percent_decoded() {
        assert_eq!(percent_decode("/home/a%20b/x"), "/home/a b/x");
        assert_eq!(percent_decode("/bad%2"), "/bad%2");
    }
}
