//! Property: any Unicode text embeds into a unit vector of the model's width, without panic.

mod common;

use common::{assert_unit, model};
use proptest::prelude::*;

proptest! {
    // Each case runs the encoder three times: few cases, wide inputs.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn any_text_embeds_to_a_unit_vector(text in "\\PC{0,300}", raw in any::<String>()) {
        let model = model();
        assert_unit(&model.embed_query(&text));
        assert_unit(&model.embed_passage(&raw));
        for v in model.embed_passages(&[&text, &raw]) {
            assert_unit(&v);
        }
    }
}
