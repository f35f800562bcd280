"""Worker identities: an ordinal and an index, never the host name; one public-feed id per instance."""

import pytest

from cityos.ingest.sessions import MAX_INSTANCES, parse_instance, public_feed_client_id, worker_client_id


def test_worker_ids_are_made_of_the_instance_ordinal_and_index_only():
    assert worker_client_id(3, 1) == "cityos-ingest-3-1"


def test_each_instance_has_its_own_public_feed_client_id():
    assert len({public_feed_client_id(n) for n in range(MAX_INSTANCES)}) == MAX_INSTANCES


@pytest.mark.parametrize("value, expected", [("auto", None), ("", None), (" AUTO ", None), ("0", 0), ("63", 63)])
def test_instance_setting_is_auto_or_an_ordinal(value, expected):
    assert parse_instance(value) == expected


@pytest.mark.parametrize("value", ["-1", "64", "web-1", "1.5", "0x1"])
def test_instance_setting_refuses_anything_else_with_a_clear_message(value):
    with pytest.raises(ValueError, match="CITYOS_INGEST_INSTANCE"):
        parse_instance(value)
