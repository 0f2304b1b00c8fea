//! The functions' own CloudWatch metrics, as embedded metric format (EMF) log lines:
//! CloudWatch Logs turns each line into metric data points, so emitting them is a write to
//! stdout (which Lambda sends to the function's log group), with no API call and no IAM
//! permission. The queue consumers report every batch's size and the records they handed
//! back to SQS (batch item failures): Lambda's own `Errors` metric never counts those, and
//! the template's error-rate alarms read them.

/// Namespace of the functions' metrics (the template's alarms read it).
pub const NAMESPACE: &str = "rez";

/// The EMF line of one SQS batch handled by `function_name` (the Lambda function name,
/// the metrics' `FunctionName` dimension, as Lambda's own metrics name it).
pub fn batch_line(function_name: &str, items: usize, failures: usize, timestamp_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [
                    {"Name": "BatchItems", "Unit": "Count"},
                    {"Name": "BatchItemFailures", "Unit": "Count"}
                ]
            }]
        },
        "FunctionName": function_name,
        "BatchItems": items,
        "BatchItemFailures": failures,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_line_is_embedded_metric_format() {
        let line = batch_line("rez-dev-processor", 10, 3, 1_795_000_000_000);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "rez");
        assert_eq!(directive["Dimensions"], serde_json::json!([["FunctionName"]]));
        // Every metric and dimension the directive names is a member of the line.
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m}");
        }
        assert_eq!(v["FunctionName"], "rez-dev-processor");
        assert_eq!(v["BatchItems"], 10);
        assert_eq!(v["BatchItemFailures"], 3);
        assert_eq!(v["_aws"]["Timestamp"], 1_795_000_000_000i64);
    }
}
