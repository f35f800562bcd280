"""Topic scheme v1: cityos/v1/{domain}/{device_id}/{stream}, and who may publish on it."""

from __future__ import annotations

import pytest

from cityos.ingest.rows import Rejected
from cityos.ingest.topics import SERVICE_USER, TopicInfo, check_publisher, parse_topic, topic_for


def test_a_valid_topic_splits_into_domain_device_and_stream():
    assert parse_topic("cityos/v1/hems/home-0001/readings") == TopicInfo("hems", "home-0001", "readings")


def test_topic_for_builds_the_topic_parse_topic_reads():
    assert parse_topic(topic_for("vehicle", "plow_07", "senml")) == TopicInfo("vehicle", "plow_07", "senml")


@pytest.mark.parametrize("topic", [
    "cityos/v2/hems/home-0001/readings",
    "city/v1/hems/home-0001/readings",
    "cityos/v1/hems/home-0001",
    "cityos/v1/hems/home-0001/readings/extra",
    "/cityos/v1/hems/home-0001/readings",
    "",
])
def test_a_topic_outside_the_scheme_is_bad_topic(topic):
    with pytest.raises(Rejected) as err:
        parse_topic(topic)
    assert err.value.reason == "bad_topic"


def test_an_unknown_domain_is_bad_topic():
    with pytest.raises(Rejected) as err:
        parse_topic("cityos/v1/water/meter-001/readings")
    assert err.value.reason == "bad_topic"


@pytest.mark.parametrize("device_id", ["Home-0001", "ab", "-home", "a" * 65, "home 1", "home.1", "家-001"])
def test_a_malformed_device_id_is_bad_topic(device_id):
    with pytest.raises(Rejected) as err:
        parse_topic(f"cityos/v1/hems/{device_id}/readings")
    assert err.value.reason == "bad_topic"


@pytest.mark.parametrize("stream", ["", "Readings", "read+ings", "#", "x" * 33])
def test_a_malformed_stream_name_is_bad_topic(stream):
    with pytest.raises(Rejected) as err:
        parse_topic(f"cityos/v1/hems/home-0001/{stream}")
    assert err.value.reason == "bad_topic"


def test_a_device_may_publish_under_its_own_id():
    check_publisher(TopicInfo("hems", "home-0001", "readings"), "home-0001")


def test_the_service_user_may_publish_for_any_device():
    check_publisher(TopicInfo("hems", "home-0001", "readings"), SERVICE_USER)


def test_the_publisher_is_not_checked_when_unknown():
    check_publisher(TopicInfo("hems", "home-0001", "readings"), None)


def test_another_device_publishing_is_topic_device_mismatch():
    with pytest.raises(Rejected) as err:
        check_publisher(TopicInfo("hems", "home-0001", "readings"), "home-0002")
    assert err.value.reason == "topic_device_mismatch"
