//! Money, exactly. Spend is counted in whole nanodollars (`u64`): every list price in USD
//! per million tokens with up to three decimals is a whole number of nanodollars per token,
//! so a cost is a product and sums never drift — a budget compared with `<=` means what it
//! says, on SQLite and on DynamoDB alike (where it is an atomic `ADD` of integers).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::Usage;
use crate::error::ValidationError;

/// An amount of US dollars in nanodollars (10⁻⁹ USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nanodollars(pub u64);

impl Nanodollars {
    pub const ZERO: Nanodollars = Nanodollars(0);

    /// Parse a non-negative dollar amount (`5`, `0.25`) to the nearest nanodollar.
    pub fn from_usd(usd: f64) -> Result<Self, ValidationError> {
        if !usd.is_finite() || !(0.0..=1.0e9).contains(&usd) {
            return Err(ValidationError::invalid("usd", format!("must be a dollar amount of 0 or more (got {usd})")));
        }
        Ok(Self((usd * 1e9).round() as u64))
    }

    pub fn usd(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn saturating_add(self, other: Nanodollars) -> Nanodollars {
        Nanodollars(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Nanodollars) -> Nanodollars {
        Nanodollars(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Nanodollars {
    /// `$0.012345` (six decimals: a millionth of a dollar is below any token price).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.6}", self.usd())
    }
}

/// A model's prices, in nanodollars per token (= USD per million tokens × 1,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl ModelPrice {
    /// From list prices in USD per million tokens.
    pub fn per_million(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Result<Self, ValidationError> {
        let each = |usd: f64, what: &str| -> Result<u64, ValidationError> {
            if !usd.is_finite() || !(0.0..=1.0e6).contains(&usd) {
                return Err(ValidationError::invalid(
                    what,
                    format!("a price is USD per million tokens, 0 or more (got {usd})"),
                ));
            }
            Ok((usd * 1000.0).round() as u64)
        };
        Ok(Self {
            input: each(input, "input")?,
            output: each(output, "output")?,
            cache_read: each(cache_read, "cache_read")?,
            cache_write: each(cache_write, "cache_write")?,
        })
    }

    /// From list prices where the cache prices may be left out: cache reads then cost a
    /// tenth of input, cache writes 1.25 times input (the common providers' ratios).
    pub fn listed(
        input: f64,
        output: f64,
        cache_read: Option<f64>,
        cache_write: Option<f64>,
    ) -> Result<Self, ValidationError> {
        Self::per_million(input, output, cache_read.unwrap_or(input / 10.0), cache_write.unwrap_or(input * 1.25))
    }

    /// One entry of `REZ_AGENT_PRICE`: `model=input,output[,cache_read,cache_write]` in USD
    /// per million tokens.
    pub fn parse_entry(entry: &str) -> Result<(String, ModelPrice), String> {
        let (model, prices) = entry
            .split_once('=')
            .ok_or("expected model=input,output[,cache_read,cache_write] (USD per million tokens)")?;
        let model = model.trim();
        let n: Vec<f64> = prices
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("the prices of `{model}` are not numbers"))?;
        if model.is_empty() || !(2..=4).contains(&n.len()) {
            return Err(format!("give a model and 2 to 4 prices (got `{entry}`)"));
        }
        let price = Self::listed(n[0], n[1], n.get(2).copied(), n.get(3).copied()).map_err(|e| e.message)?;
        Ok((model.to_owned(), price))
    }

    /// What `usage` cost.
    pub fn cost(&self, usage: &Usage) -> Nanodollars {
        Nanodollars(
            usage
                .input_tokens
                .saturating_mul(self.input)
                .saturating_add(usage.output_tokens.saturating_mul(self.output))
                .saturating_add(usage.cache_read_tokens.saturating_mul(self.cache_read))
                .saturating_add(usage.cache_write_tokens.saturating_mul(self.cache_write)),
        )
    }

    /// The most a call can cost: every input byte a token at the dearest input rate (a
    /// token is at least one byte), and all of `max_tokens` produced.
    pub fn bound(&self, input_bytes: u64, max_tokens: u32) -> Nanodollars {
        let dearest_input = self.input.max(self.cache_write).max(self.cache_read);
        Nanodollars(
            input_bytes.saturating_mul(dearest_input).saturating_add(u64::from(max_tokens).saturating_mul(self.output)),
        )
    }
}

/// List prices (USD per million tokens: input, output, cache read, cache write) of the
/// common models; configuration adds to and overrides them. A model id matches the
/// longest entry it contains, so dated and regional ids (`claude-sonnet-4-5-20250929`,
/// `us.anthropic.claude-sonnet-4-5-…-v1:0`) find their family.
pub const DEFAULT_PRICES: &[(&str, f64, f64, f64, f64)] = &[
    ("claude-opus-4-5", 5.0, 25.0, 0.5, 6.25),
    ("claude-opus-4-1", 15.0, 75.0, 1.5, 18.75),
    ("claude-opus-4", 15.0, 75.0, 1.5, 18.75),
    ("claude-sonnet-4-5", 3.0, 15.0, 0.3, 3.75),
    ("claude-sonnet-4", 3.0, 15.0, 0.3, 3.75),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.3, 3.75),
    ("claude-haiku-4-5", 1.0, 5.0, 0.1, 1.25),
    ("claude-3-5-haiku", 0.8, 4.0, 0.08, 1.0),
    ("gpt-5-mini", 0.25, 2.0, 0.025, 0.25),
    ("gpt-5-nano", 0.05, 0.4, 0.005, 0.05),
    ("gpt-5", 1.25, 10.0, 0.125, 1.25),
    ("gpt-4.1-mini", 0.4, 1.6, 0.1, 0.4),
    ("gpt-4.1-nano", 0.1, 0.4, 0.025, 0.1),
    ("gpt-4.1", 2.0, 8.0, 0.5, 2.0),
    ("gpt-4o-mini", 0.15, 0.6, 0.075, 0.15),
    ("gpt-4o", 2.5, 10.0, 1.25, 2.5),
];

/// Prices by model: configured entries first, then [`DEFAULT_PRICES`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    configured: Vec<(String, ModelPrice)>,
}

impl PriceTable {
    pub fn new(configured: Vec<(String, ModelPrice)>) -> Self {
        Self { configured }
    }

    /// The price of `model`: an exact configured entry, else the longest configured or
    /// default entry the id contains.
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        if let Some((_, p)) = self.configured.iter().find(|(m, _)| m == model) {
            return Some(*p);
        }
        let configured = self.configured.iter().map(|(m, p)| (m.as_str(), *p));
        let defaults = DEFAULT_PRICES
            .iter()
            .filter_map(|&(m, i, o, cr, cw)| ModelPrice::per_million(i, o, cr, cw).ok().map(|p| (m, p)));
        configured.chain(defaults).filter(|(m, _)| model.contains(m)).max_by_key(|(m, _)| m.len()).map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prices_are_exact() {
        let p = ModelPrice::per_million(3.0, 15.0, 0.3, 3.75).unwrap();
        let u = Usage { input_tokens: 1_000_000, output_tokens: 1_000, cache_read_tokens: 10, cache_write_tokens: 0 };
        assert_eq!(p.cost(&u), Nanodollars(3_000_000_000 + 15_000_000 + 3_000));
        assert_eq!(p.cost(&u).to_string(), "$3.015003");
    }

    #[test]
    fn models_find_their_family() {
        let t = PriceTable::default();
        assert_eq!(t.price("claude-sonnet-4-5-20250929").unwrap().input, 3_000);
        assert_eq!(t.price("us.anthropic.claude-haiku-4-5-20251001-v1:0").unwrap().output, 5_000);
        assert_eq!(t.price("gpt-4o-mini-2024-07-18").unwrap().input, 150);
        assert_eq!(t.price("gpt-4o").unwrap().input, 2_500);
        assert!(t.price("llama3.1:8b").is_none());
        let mine = ModelPrice::per_million(0.0, 0.0, 0.0, 0.0).unwrap();
        let t = PriceTable::new(vec![("llama3.1:8b".into(), mine), ("gpt-4o".into(), mine)]);
        assert_eq!(t.price("llama3.1:8b"), Some(mine));
        assert_eq!(t.price("gpt-4o"), Some(mine), "configuration overrides the defaults");
    }

    #[test]
    fn price_entries_are_parsed_with_the_cache_defaults() {
        let (m, p) = ModelPrice::parse_entry(" llama3.1:8b = 0.1, 0.2 ").unwrap();
        assert_eq!((m.as_str(), p.input, p.output, p.cache_read, p.cache_write), ("llama3.1:8b", 100, 200, 10, 125));
        let (_, p) = ModelPrice::parse_entry("m=1,2,0.5,3").unwrap();
        assert_eq!((p.cache_read, p.cache_write), (500, 3000));
        for bad in ["m=1", "m=1,2,3,4,5", "m", "=1,2", "m=a,b", "m=-1,2"] {
            assert!(ModelPrice::parse_entry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_prices_and_amounts_are_refused() {
        assert!(ModelPrice::per_million(-1.0, 0.0, 0.0, 0.0).is_err());
        assert!(ModelPrice::per_million(f64::NAN, 0.0, 0.0, 0.0).is_err());
        assert!(Nanodollars::from_usd(-0.01).is_err());
        assert_eq!(Nanodollars::from_usd(5.0).unwrap(), Nanodollars(5_000_000_000));
    }

    proptest! {
        #[test]
        fn the_bound_covers_every_usage_within_it(
            bytes in 0u64..200_000, max in 1u32..64_000,
            inp in 0u64..200_000, out in 0u64..64_000, cr in 0u64..200_000, cw in 0u64..200_000,
        ) {
            let p = ModelPrice::per_million(3.0, 15.0, 0.3, 3.75).unwrap();
            let u = Usage { input_tokens: inp, output_tokens: out, cache_read_tokens: cr, cache_write_tokens: cw };
            if inp + cr + cw <= bytes && out <= u64::from(max) {
                prop_assert!(p.cost(&u) <= p.bound(bytes, max));
            }
        }
    }
}
