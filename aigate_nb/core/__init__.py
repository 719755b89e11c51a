"""What everything else stands on: the models' rules, image bytes, region geometry, usage and
prices, the result record, errors and text. Pure: it sends nothing and keeps nothing."""
