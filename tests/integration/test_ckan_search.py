"""The local CKAN with our Solr replacement (cityos_pgsearch), through ckanapi over HTTP."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from ckanapi import NotFound, RemoteCKAN


@pytest.fixture(scope="module")
def ckan(settings) -> RemoteCKAN:
    if not settings.ckan_url or not settings.ckan_token:
        pytest.fail("no CKAN: `cityos test` brings up the local CKAN (or set CITYOS_CKAN_URL and CITYOS_CKAN_TOKEN)")
    return RemoteCKAN(settings.ckan_url, apikey=settings.ckan_token)


@pytest.fixture(scope="module")
def org(ckan) -> str:
    name = f"s{uuid.uuid4().hex[:8]}"
    ckan.action.organization_create(name=name, title="検索テスト / search test")
    for n, (title, tags, private) in enumerate([
        ("除雪車の位置", ["snow", "道路"], False),
        ("消火栓の一覧", ["fire", "防災"], False),
        ("バス停と乗車人数", ["bus", "交通"], False),
        ("内部の集計", ["internal"], True),
    ]):
        ckan.action.package_create(name=f"{name}-{n}", title=title, owner_org=name, private=private,
                                   tags=[{"name": t} for t in tags], notes=f"dataset {n} 会津若松",
                                   extras=[{"key": "frequency", "value": "daily"}])
    return name


def _names(result: dict) -> list[str]:
    return sorted(p["name"] for p in result["results"])


def test_free_text_finds_japanese_words_in_titles(ckan, org):
    assert _names(ckan.action.package_search(q="消火栓", fq=f"organization:{org}")) == [f"{org}-1"]


def test_filter_queries_on_tags_and_organization(ckan, org):
    found = ckan.action.package_search(fq=f"organization:{org} AND tags:(snow OR bus)")
    assert _names(found) == [f"{org}-0", f"{org}-2"]


def test_facets_count_tags_of_the_matching_datasets(ckan, org):
    found = ckan.action.package_search(fq=f"organization:{org}", **{"facet.field": '["tags"]'}, include_private=True)
    assert found["facets"]["tags"] == {"snow": 1, "道路": 1, "fire": 1, "防災": 1, "bus": 1, "交通": 1, "internal": 1}


def test_rows_and_start_page_through_results_in_order(ckan, org):
    pages = [ckan.action.package_search(fq=f"organization:{org}", sort="name asc", rows=2, start=start)
             for start in (0, 2)]
    assert [p["count"] for p in pages] == [3, 3]
    assert [r["name"] for page in pages for r in page["results"]] == [f"{org}-{n}" for n in (0, 1, 2)]


def test_a_private_dataset_is_invisible_to_anonymous_search(settings, ckan, org):
    anonymous = RemoteCKAN(settings.ckan_url)
    assert f"{org}-3" not in _names(anonymous.action.package_search(fq=f"organization:{org}"))
    assert f"{org}-3" in _names(ckan.action.package_search(fq=f"organization:{org}", include_private=True))


def test_a_patched_title_is_found_by_its_new_words(ckan, org):
    ckan.action.package_patch(id=f"{org}-2", title="路線バスの停留所")
    assert _names(ckan.action.package_search(q="路線バス", fq=f"organization:{org}")) == [f"{org}-2"]


def test_a_deleted_dataset_leaves_the_search_results(ckan, org):
    ckan.action.package_create(name=f"{org}-gone", title="消える", owner_org=org)
    ckan.action.package_delete(id=f"{org}-gone")
    assert f"{org}-gone" not in _names(ckan.action.package_search(fq=f"organization:{org}", rows=50))


def test_uploaded_file_bytes_come_back_unchanged(settings, ckan, org):
    data = "種別,緯度,経度\r\n消火栓,37.49,139.93\r\n".encode("utf-8-sig")
    upload = io.BytesIO(data)
    upload.name = "hydrants.csv"
    resource = ckan.action.resource_create(package_id=f"{org}-1", name="hydrants", format="CSV", upload=upload)
    response = httpx.get(resource["url"], follow_redirects=True, timeout=30)
    assert response.content == data


def test_a_url_resource_keeps_its_url(ckan, org):
    resource = ckan.action.resource_create(package_id=f"{org}-0", name="live", format="API",
                                           url="https://city.example.jp/api/v1/live/snowplows")
    shown = ckan.action.resource_show(id=resource["id"])
    assert shown["url"] == "https://city.example.jp/api/v1/live/snowplows"


def test_package_show_of_an_unknown_dataset_is_not_found(ckan):
    with pytest.raises(NotFound):
        ckan.action.package_show(id=f"missing-{uuid.uuid4().hex[:6]}")


def test_a_malformed_query_answers_400_not_500(ckan):
    for q in ("((((a", "(" * 3000 + "a"):
        response = httpx.get(f"{ckan.address}/api/3/action/package_search", params={"q": q}, timeout=30)
        assert response.status_code == 400, response.text[:300]
        assert "Search Query is invalid" in response.json()["error"]["message"]


def test_user_names_are_not_listed_to_anonymous_callers(ckan):
    name = ckan.action.user_list()[0]["name"]  # the sysadmin token may list them
    assert httpx.get(f"{ckan.address}/api/3/action/user_list", timeout=30).status_code == 403
    response = httpx.get(f"{ckan.address}/api/3/action/user_show", params={"id": name}, timeout=30)
    assert response.status_code == 403 and name not in response.text
