"""The Magento sim's catalog behaves like Magento 2.4.8, traps included (CATALOG-NOTES §2 and §4)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.sims.magento import create_app
from sandbox.sims.magento_orders import CartLine, build_order, sample_customer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ALL, DEFAULT, PLAIN = "/rest/all/V1", "/rest/default/V1", "/rest/V1"


class Api:
    """A signed-in client; every call names its scope prefix (``ALL``, ``DEFAULT``...)."""

    def __init__(self) -> None:
        self.client = TestClient(create_app())
        token = self.client.post(f"{ALL}/integration/admin/token", json={"username": "admin", "password": "admin123"})
        self.auth = {"Authorization": f"Bearer {token.json()}"}

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.post("/_sim/seed", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def get(self, path: str, scope: str = ALL, **params: str) -> Any:
        return self.client.get(f"{scope}{path}", params=params, headers=self.auth)

    def post(self, path: str, body: Any, scope: str = ALL) -> Any:
        return self.client.post(f"{scope}{path}", json=body, headers=self.auth)

    def put(self, path: str, body: Any, scope: str = ALL) -> Any:
        return self.client.put(f"{scope}{path}", json=body, headers=self.auth)

    def delete(self, path: str, scope: str = ALL) -> Any:
        return self.client.delete(f"{scope}{path}", headers=self.auth)

    def ok(self, response: Any) -> Any:
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def api() -> Api:
    return Api()


def attr(product: dict[str, Any], code: str) -> Any:
    return next((a["value"] for a in product.get("custom_attributes", []) if a["attribute_code"] == code), None)


def simple(sku: str, name: str | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sku": sku, "name": name or sku, "price": 10, "type_id": "simple", "attribute_set_id": 4}
    body.update(more)
    return body


SEED = {
    "websites": [{"id": 2, "code": "eu", "name": "EU Website", "default_group_id": 2}],
    "store_groups": [
        {"id": 2, "website_id": 2, "root_category_id": 2, "default_store_id": 2, "name": "EU Store", "code": "eu_store"}
    ],
    "store_views": [
        {"id": 2, "code": "fr", "name": "French", "website_id": 2, "store_group_id": 2, "is_active": 1},
        {"id": 3, "code": "de", "name": "German", "website_id": 2, "store_group_id": 2, "is_active": 1},
    ],
    "attributes": [
        {
            "attribute_code": "size",
            "attribute_id": 141,
            "attribute_set_ids": [4],
            "frontend_input": "select",
            "scope": "global",
            "default_frontend_label": "Size",
            "options": [{"label": "S", "value": "168"}, {"label": "M", "value": "169"}, {"label": "L", "value": "170"}],
        },
        {
            "attribute_code": "color",
            "frontend_input": "select",
            "default_frontend_label": "Color",
            "options": [{"label": "Red", "value": "52"}, {"label": "Blue", "value": "53"}],
        },
    ],
    "categories": [
        {"id": 11, "parent_id": 2, "name": "Men"},
        {"id": 12, "parent_id": 11, "name": "Tops"},
        {"id": 16, "parent_id": 12, "name": "Tees"},
    ],
    "sources": [
        {"source_code": "central", "name": "Central", "enabled": True, "country_id": "US", "postcode": "10001"},
        {"source_code": "east", "name": "East", "enabled": True, "country_id": "US", "postcode": "02101"},
    ],
    "stock_source_links": [
        {"stock_id": 1, "source_code": "central", "priority": 2},
        {"stock_id": 1, "source_code": "east", "priority": 3},
    ],
}


@pytest.fixture
def shop(api: Api) -> Api:
    seeded = api.seed(SEED)
    assert seeded["attributes"][0] == {
        "attribute_code": "size",
        "attribute_id": 141,
        "options": {"S": 168, "M": 169, "L": 170},
    }
    assert [c["id"] for c in seeded["categories"]] == [11, 12, 16]
    return api


# --------------------------------------------------------------------------- store scope


def test_a_store_view_write_makes_an_override_that_hides_later_global_writes(shop: Api) -> None:
    shop.ok(
        shop.post(
            "/products",
            {
                "product": simple(
                    "TEE-1", "Tee", custom_attributes=[{"attribute_code": "description", "value": "Cotton"}]
                )
            },
        )
    )
    # the trap: a connector updating through /rest/default (or /rest/V1) writes store-view values
    shop.ok(shop.put("/products/TEE-1", {"product": {"sku": "TEE-1", "name": "Tee (store)"}}, scope=PLAIN))
    shop.ok(shop.put("/products/TEE-1", {"product": {"sku": "TEE-1", "name": "Tee v2", "price": 12}}))
    assert shop.ok(shop.get("/products/TEE-1"))["name"] == "Tee v2"
    store_view = shop.ok(shop.get("/products/TEE-1", scope=DEFAULT))
    assert store_view["name"] == "Tee (store)"  # the global change does not show in the store view
    assert store_view["price"] == 12  # price scope is global (Magento's default)
    assert attr(store_view, "description") == "Cotton"


def test_creating_through_a_store_view_writes_global_and_store_values(shop: Api) -> None:
    shop.ok(shop.post("/products", {"product": simple("TEE-2", "Tee two")}, scope=DEFAULT))
    shop.ok(shop.put("/products/TEE-2", {"product": {"sku": "TEE-2", "name": "Renamed"}}))
    assert shop.ok(shop.get("/products/TEE-2"))["name"] == "Renamed"
    assert shop.ok(shop.get("/products/TEE-2", scope=DEFAULT))["name"] == "Tee two"


def test_price_scope_website_makes_prices_store_scoped(api: Api) -> None:
    api.seed({"config": {"price_scope": "website"}})
    api.ok(api.post("/products", {"product": simple("P-1")}))
    api.ok(api.put("/products/P-1", {"product": {"sku": "P-1", "price": 99}}, scope=DEFAULT))
    assert api.ok(api.get("/products/P-1"))["price"] == 10
    assert api.ok(api.get("/products/P-1", scope=DEFAULT))["price"] == 99


def test_website_assignment_depends_on_scope(shop: Api) -> None:
    everywhere = shop.ok(shop.post("/products", {"product": simple("W-ALL")}))
    assert everywhere["extension_attributes"]["website_ids"] == [1, 2]
    french = shop.ok(shop.post("/products", {"product": simple("W-FR")}, scope="/rest/fr/V1"))
    assert french["extension_attributes"]["website_ids"] == [2]
    explicit = {"extension_attributes": {"website_ids": [1]}}
    assert shop.ok(shop.post("/products", {"product": simple("W-1", **explicit)}))["extension_attributes"][
        "website_ids"
    ] == [1]
    bad = shop.post("/products", {"product": simple("W-9", extension_attributes={"website_ids": [9]})})
    assert bad.status_code == 404 and bad.json()["parameters"] == [9]
    assert shop.ok(shop.post("/products/W-1/websites", {"productWebsiteLink": {"sku": "W-1", "website_id": 2}})) is True
    assert shop.ok(shop.get("/products/W-1"))["extension_attributes"]["website_ids"] == [1, 2]


def test_store_lists_and_unknown_store_codes(shop: Api) -> None:
    assert [w["code"] for w in shop.ok(shop.get("/store/websites"))] == ["admin", "base", "eu"]
    groups = shop.ok(shop.get("/store/storeGroups"))
    assert {g["code"]: g["root_category_id"] for g in groups}["main_website_store"] == 2
    assert [s["code"] for s in shop.ok(shop.get("/store/storeViews"))] == ["admin", "default", "fr", "de"]
    missing = shop.get("/store/websites", scope="/rest/nowhere/V1")
    assert missing.status_code == 404 and missing.json()["message"] == "Request does not match any route."


# --------------------------------------------------------------------------- attributes


def test_option_value_sent_is_ignored_and_listing_starts_blank(shop: Api) -> None:
    answer = shop.ok(shop.post("/products/attributes/color/options", {"option": {"label": "Green", "value": "GREEN"}}))
    assert answer.startswith("id_") and answer != "id_GREEN"
    options = shop.ok(shop.get("/products/attributes/color/options"))
    assert options[0] == {"label": " ", "value": ""}
    green = next(o for o in options if o["label"] == "Green")
    assert green["value"] == answer[3:] and green["value"].isdigit()
    again = shop.post("/products/attributes/color/options", {"option": {"label": "green"}})
    assert again.status_code == 400 and "already exists" in again.json()["message"]
    assert (
        shop.ok(shop.put(f"/products/attributes/color/options/{green['value']}", {"option": {"label": "Lime"}})) is True
    )
    assert shop.ok(shop.delete(f"/products/attributes/color/options/{green['value']}")) is True
    assert all(o["label"] != "Lime" for o in shop.ok(shop.get("/products/attributes/color/options")))


def test_attribute_codes_are_validated_like_magento(shop: Api) -> None:
    bad = shop.post(
        "/products/attributes",
        {
            "attribute": {
                "attribute_code": "Operation System",
                "frontend_input": "text",
                "default_frontend_label": "OS",
                "is_required": False,
                "frontend_labels": [],
            }
        },
    )
    assert bad.status_code == 400
    assert bad.json()["message"].startswith('Attribute code "%1" is invalid.') and bad.json()["parameters"] == [
        "Operation System"
    ]
    too_long = shop.post(
        "/products/attributes",
        {"attribute": {"attribute_code": "a" * 61, "frontend_input": "text", "default_frontend_label": "x"}},
    )
    assert too_long.status_code == 400 and too_long.json()["parameters"] == [1, 60]
    made = shop.ok(
        shop.post(
            "/products/attributes",
            {
                "attribute": {
                    "attribute_code": "operation_system",
                    "frontend_input": "select",
                    "default_frontend_label": "OS",
                    "scope": "global",
                    "options": [{"label": "Linux", "value": "x"}],
                }
            },
        )
    )
    assert made["is_user_defined"] is True and [o["label"] for o in made["options"]] == [" ", "Linux"]
    twice = shop.post(
        "/products/attributes",
        {"attribute": {"attribute_code": "operation_system", "frontend_input": "text", "default_frontend_label": "OS"}},
    )
    assert (
        twice.status_code == 400 and twice.json()["message"] == "An attribute with the same code (%1) already exists."
    )
    assert shop.get("/products/attributes/nope").status_code == 404
    assert shop.delete("/products/attributes/name").status_code == 400  # system attribute
    assert shop.ok(shop.delete("/products/attributes/operation_system")) is True


def test_attribute_sets_copy_their_skeleton(shop: Api) -> None:
    created = shop.ok(
        shop.post(
            "/products/attribute-sets",
            {"attributeSet": {"attribute_set_name": "Apparel", "sort_order": 0}, "skeletonId": 4},
        )
    )
    set_id = created["attribute_set_id"]
    codes = {a["attribute_code"] for a in shop.ok(shop.get(f"/products/attribute-sets/{set_id}/attributes"))}
    assert {"name", "sku", "price", "status", "visibility", "url_key", "tax_class_id", "special_price"} <= codes
    groups = shop.ok(
        shop.get(
            "/products/attribute-sets/groups/list",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "attribute_set_id",
                "searchCriteria[filter_groups][0][filters][0][value]": str(set_id),
            },
        )
    )
    group_id = groups["items"][0]["attribute_group_id"]
    assigned = shop.ok(
        shop.post(
            "/products/attribute-sets/attributes",
            {"attributeSetId": set_id, "attributeGroupId": group_id, "attributeCode": "size", "sortOrder": 1},
        )
    )
    assert assigned == "141"
    assert "size" in {a["attribute_code"] for a in shop.ok(shop.get(f"/products/attribute-sets/{set_id}/attributes"))}
    wrong_group = shop.post(
        "/products/attribute-sets/attributes",
        {"attributeSetId": set_id, "attributeGroupId": 7, "attributeCode": "size", "sortOrder": 1},
    )
    assert wrong_group.status_code == 400
    duplicate = shop.post(
        "/products/attribute-sets",
        {"attributeSet": {"attribute_set_name": "apparel", "sort_order": 0}, "skeletonId": 4},
    )
    assert duplicate.status_code == 400
    names = [s["attribute_set_name"] for s in shop.ok(shop.get("/products/attribute-sets/sets/list"))["items"]]
    assert names == ["Default", "Apparel"]


# --------------------------------------------------------------------------- categories


def test_category_tree_list_and_url_keys(shop: Api) -> None:
    tree = shop.ok(shop.get("/categories", scope=DEFAULT))
    assert tree["id"] == 2 and tree["children_data"][0]["name"] == "Men"
    assert tree["children_data"][0]["children_data"][0]["children_data"][0]["id"] == 16
    shallow = shop.ok(shop.get("/categories", rootCategoryId="2", depth="1"))
    assert shallow["children_data"][0]["children_data"] == []
    same = shop.post("/categories", {"category": {"parent_id": 11, "name": "tops"}})  # slug "tops" is taken under Men
    assert same.status_code == 400 and same.json()["message"] == "URL key for specified store already exists."
    elsewhere = shop.ok(shop.post("/categories", {"category": {"parent_id": 2, "name": "Tops", "is_active": True}}))
    assert (
        attr(elsewhere, "url_key") == "tops"
        and elsewhere["level"] == 2
        and elsewhere["path"] == f"1/2/{elsewhere['id']}"
    )
    found = shop.ok(
        shop.get(
            "/categories/list",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "parent_id",
                "searchCriteria[filter_groups][0][filters][0][value]": "11",
            },
        )
    )
    assert [c["name"] for c in found["items"]] == ["Tops"]
    by_key = shop.ok(
        shop.get(
            "/categories/list",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "url_key",
                "searchCriteria[filter_groups][0][filters][0][value]": "tees",
            },
        )
    )
    assert by_key["total_count"] == 1


def test_category_put_needs_a_name_and_moves_keep_the_tree(shop: Api) -> None:
    nameless = shop.put("/categories/16", {"category": {"id": 16, "is_active": True}})
    assert nameless.status_code == 400
    assert nameless.json() == {
        "message": 'The "%1" attribute value is empty. Set the attribute and try again.',
        "parameters": ["Name"],
    }
    before = shop.ok(shop.get("/categories/12"))["updated_at"]
    renamed = shop.ok(shop.put("/categories/12", {"category": {"id": 12, "name": "Shirts"}}))
    assert renamed["name"] == "Shirts" and renamed["updated_at"] > before
    assert shop.ok(shop.put("/categories/12/move", {"parentId": 2, "afterId": 11})) is True
    moved = shop.ok(shop.get("/categories/16"))
    assert moved["path"] == "1/2/12/16" and moved["level"] == 3
    loop = shop.put("/categories/12/move", {"parentId": 16})
    assert loop.status_code == 400
    assert shop.delete("/categories/2").status_code == 400
    assert shop.ok(shop.delete("/categories/12")) is True
    assert shop.get("/categories/16").status_code == 404


def test_store_view_category_rename_is_an_override(shop: Api) -> None:
    shop.ok(shop.put("/categories/11", {"category": {"id": 11, "name": "Herren"}}, scope="/rest/de/V1"))
    assert shop.ok(shop.get("/categories/11"))["name"] == "Men"
    assert shop.ok(shop.get("/categories/11", scope="/rest/de/V1"))["name"] == "Herren"


def test_category_product_links(shop: Api) -> None:
    shop.ok(shop.post("/products", {"product": simple("LINK-1")}))
    assert (
        shop.ok(
            shop.post("/categories/16/products", {"productLink": {"sku": "LINK-1", "position": 3, "category_id": "16"}})
        )
        is True
    )
    assert shop.ok(shop.get("/categories/16/products")) == [{"sku": "LINK-1", "position": 3, "category_id": "16"}]
    assert shop.ok(shop.get("/products/LINK-1"))["extension_attributes"]["category_links"] == [
        {"position": 3, "category_id": "16"}
    ]
    assert shop.ok(shop.get("/categories", rootCategoryId="12"))["children_data"][0]["product_count"] == 1
    assert shop.ok(shop.delete("/categories/16/products/LINK-1")) is True
    again = shop.delete("/categories/16/products/LINK-1")
    assert again.status_code == 400 and again.json()["message"] == "The category doesn't contain the specified product."
    assert (
        shop.post("/categories/16/products", {"productLink": {"sku": "NOPE", "category_id": "16"}}).status_code == 404
    )


# --------------------------------------------------------------------------- products


def test_url_key_collides_for_products_named_alike(shop: Api) -> None:
    first = shop.ok(
        shop.post("/products", {"product": simple("A-1", "Blue Mug", extension_attributes={"website_ids": [1]})})
    )
    assert attr(first, "url_key") == "blue-mug"
    clash = shop.post("/products", {"product": simple("A-2", "Blue Mug")})
    assert clash.status_code == 400 and clash.json() == {"message": "URL key for specified store already exists."}
    assert shop.get("/products/A-2").status_code == 404
    keyed = {"custom_attributes": [{"attribute_code": "url_key", "value": "blue-mug-a-2"}]}
    assert shop.ok(shop.post("/products", {"product": simple("A-2", "Blue Mug", **keyed)}))["sku"] == "A-2"
    # a product on another website only does not collide
    other = {"extension_attributes": {"website_ids": [2]}}
    assert shop.post("/products", {"product": simple("A-3", "Blue Mug", **other)}).status_code == 200


def test_select_attributes_take_option_ids_and_unknown_codes_are_dropped(shop: Api) -> None:
    bad = shop.post(
        "/products", {"product": simple("S-1", custom_attributes=[{"attribute_code": "color", "value": "Red"}])}
    )
    assert bad.status_code == 400 and bad.json()["parameters"] == {"value": "Red", "fieldName": "color"}
    good = shop.ok(
        shop.post(
            "/products",
            {
                "product": simple(
                    "S-1",
                    custom_attributes=[
                        {"attribute_code": "color", "value": 52},
                        {"attribute_code": "not_created_yet", "value": "x"},
                    ],
                )
            },
        )
    )
    assert attr(good, "color") == "52"
    assert attr(good, "not_created_yet") is None


def test_values_of_attributes_outside_the_attribute_set_are_dropped(shop: Api) -> None:
    made = {"attribute_code": "material", "frontend_input": "text", "default_frontend_label": "Material"}
    shop.ok(shop.post("/products/attributes", {"attribute": made}))
    values = [{"attribute_code": "material", "value": "Cotton"}]
    first = shop.ok(shop.post("/products", {"product": simple("M-1", custom_attributes=values)}))
    assert attr(first, "material") is None  # not in set 4 yet: Magento drops the value silently
    assign = {"attributeSetId": 4, "attributeGroupId": 7, "attributeCode": "material", "sortOrder": 10}
    shop.ok(shop.post("/products/attribute-sets/attributes", assign))
    again = shop.ok(shop.put("/products/M-1", {"product": {"sku": "M-1", "custom_attributes": values}}))
    assert attr(again, "material") == "Cotton"


def test_product_types_search_encoding_and_updated_at(shop: Api) -> None:
    assert shop.post("/products", {"product": simple("T-1", type_id="kit")}).status_code == 400
    made = shop.ok(shop.post("/products", {"product": simple("bla/koe", "Slash")}))
    got = shop.client.get(f"{ALL}/products/bla%2Fkoe", headers=shop.auth)
    assert got.status_code == 200 and got.json()["id"] == made["id"]
    again = shop.ok(
        shop.client.put(f"{ALL}/products/bla%2Fkoe", json={"product": {"name": "Slash 2"}}, headers=shop.auth)
    )
    assert again["sku"] == "bla/koe" and again["updated_at"] > made["updated_at"]
    shop.ok(shop.post("/products", {"product": simple("V-1", "Voucher", type_id="virtual")}))
    found = shop.ok(
        shop.get(
            "/products",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "sku",
                "searchCriteria[filter_groups][0][filters][0][value]": "V-1,bla/koe",
                "searchCriteria[filter_groups][0][filters][0][condition_type]": "in",
            },
        )
    )
    assert sorted(p["sku"] for p in found["items"]) == ["V-1", "bla/koe"]
    virtual = shop.ok(
        shop.get(
            "/products",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "type_id",
                "searchCriteria[filter_groups][0][filters][0][value]": "virtual",
            },
        )
    )
    assert [p["sku"] for p in virtual["items"]] == ["V-1"]
    since = shop.ok(
        shop.get(
            "/products",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
                "searchCriteria[filter_groups][0][filters][0][value]": made["updated_at"],
                "searchCriteria[filter_groups][0][filters][0][condition_type]": "gt",
            },
        )
    )
    assert {p["sku"] for p in since["items"]} == {"bla/koe", "V-1"}
    assert shop.ok(shop.delete("/products/V-1")) is True
    assert shop.get("/products/V-1").status_code == 404


def test_category_links_are_kept_when_left_out_and_dropped_when_empty(shop: Api) -> None:
    links = {"extension_attributes": {"category_links": [{"position": 0, "category_id": "16"}]}}
    shop.ok(shop.post("/products", {"product": simple("C-1", **links)}))
    kept = shop.ok(
        shop.put(
            "/products/C-1", {"product": {"sku": "C-1", "price": 11, "extension_attributes": {"website_ids": [1]}}}
        )
    )
    assert kept["extension_attributes"]["category_links"] == [{"position": 0, "category_id": "16"}]
    emptied = shop.ok(
        shop.put("/products/C-1", {"product": {"sku": "C-1", "extension_attributes": {"category_links": []}}})
    )
    assert "category_links" not in emptied["extension_attributes"]
    unknown = shop.put(
        "/products/C-1",
        {"product": {"sku": "C-1", "extension_attributes": {"category_links": [{"category_id": "999"}]}}},
    )
    assert unknown.status_code == 404


def test_legacy_mode_drops_category_links_left_out(api: Api) -> None:
    api.seed(
        {"config": {"legacy_category_links_replace": True}, "categories": [{"id": 11, "parent_id": 2, "name": "Men"}]}
    )
    api.ok(
        api.post(
            "/products",
            {"product": simple("L-1", extension_attributes={"category_links": [{"position": 0, "category_id": "11"}]})},
        )
    )
    updated = api.ok(api.put("/products/L-1", {"product": {"sku": "L-1", "price": 3}}))
    assert "category_links" not in updated["extension_attributes"]


def _champ(shop: Api) -> list[int]:
    ids = []
    for size, code in (("S", "168"), ("M", "169"), ("L", "170")):
        values = [{"attribute_code": "size", "value": code}, {"attribute_code": "color", "value": "52"}]
        made = shop.ok(
            shop.post(
                "/products",
                {"product": simple(f"MS-Champ-{size}", f"Champ Tee {size}", visibility=1, custom_attributes=values)},
            )
        )
        ids.append(made["id"])
    return ids


def test_configurable_in_one_payload_and_the_links_trap(shop: Api) -> None:
    ids = _champ(shop)
    options = [
        {
            "attribute_id": "141",
            "label": "Size",
            "position": 0,
            "values": [{"value_index": 168}, {"value_index": 169}, {"value_index": 170}],
        }
    ]
    body = {
        "sku": "MS-Champ",
        "name": "Champ Tee",
        "type_id": "configurable",
        "attribute_set_id": 4,
        "price": 0,
        "extension_attributes": {"configurable_product_options": options, "configurable_product_links": ids},
    }
    parent = shop.ok(shop.post("/products", {"product": body}))
    assert parent["extension_attributes"]["configurable_product_links"] == ids
    assert [c["sku"] for c in shop.ok(shop.get("/configurable-products/MS-Champ/children"))] == [
        "MS-Champ-S",
        "MS-Champ-M",
        "MS-Champ-L",
    ]
    [option] = shop.ok(shop.get("/configurable-products/MS-Champ/options/all"))
    assert option["attribute_id"] == "141" and option["product_id"] == parent["id"]
    # a PUT without extension_attributes keeps the children...
    shop.ok(shop.put("/products/MS-Champ", {"product": {"sku": "MS-Champ", "name": "Champ Tee 2"}}))
    assert len(shop.ok(shop.get("/configurable-products/MS-Champ/children"))) == 3
    # ...but one with extension_attributes and no configurable_product_links drops them (#9789)
    dropped = shop.ok(
        shop.put("/products/MS-Champ", {"product": {"sku": "MS-Champ", "extension_attributes": {"website_ids": [1]}}})
    )
    assert dropped["extension_attributes"]["configurable_product_links"] == []
    assert dropped["extension_attributes"]["configurable_product_options"][0]["attribute_id"] == "141"
    assert shop.ok(shop.get("/configurable-products/MS-Champ/children")) == []
    assert shop.ok(shop.post("/configurable-products/MS-Champ/child", {"childSku": "MS-Champ-S"})) is True
    twice = shop.post("/configurable-products/MS-Champ/child", {"childSku": "MS-Champ-S"})
    assert twice.status_code == 400 and twice.json()["message"] == "The product is already attached."


def test_configurable_children_must_differ_and_carry_the_option_values(shop: Api) -> None:
    ids = _champ(shop)
    shop.ok(
        shop.post(
            "/products",
            {
                "product": simple(
                    "MS-Champ-S2", "Champ Tee S again", custom_attributes=[{"attribute_code": "size", "value": "168"}]
                )
            },
        )
    )
    twin = shop.ok(shop.get("/products/MS-Champ-S2"))["id"]
    shop.ok(shop.post("/products", {"product": simple("NO-SIZE")}))
    no_size = shop.ok(shop.get("/products/NO-SIZE"))["id"]
    options = [{"attribute_id": "141", "label": "Size", "values": [{"value_index": 168}]}]
    ext = {"configurable_product_options": options}
    same = shop.post(
        "/products",
        {
            "product": {
                "sku": "CFG",
                "name": "Cfg",
                "type_id": "configurable",
                "extension_attributes": {**ext, "configurable_product_links": [ids[0], twin]},
            }
        },
    )
    assert same.status_code == 400 and same.json() == {
        "message": 'Products "%1" and "%2" have the same set of attribute values.',
        "parameters": [ids[0], twin],
    }
    missing = shop.post(
        "/products",
        {
            "product": {
                "sku": "CFG",
                "name": "Cfg",
                "type_id": "configurable",
                "extension_attributes": {**ext, "configurable_product_links": [no_size]},
            }
        },
    )
    assert missing.status_code == 400 and missing.json()["parameters"] == [no_size, "size"]
    no_values = shop.post(
        "/products",
        {
            "product": {
                "sku": "CFG",
                "name": "Cfg",
                "type_id": "configurable",
                "extension_attributes": {
                    "configurable_product_options": [{"attribute_id": "141", "label": "Size", "values": []}]
                },
            }
        },
    )
    assert no_values.status_code == 400 and no_values.json()["message"] == "Option values are not specified."
    assert shop.get("/products/CFG").status_code == 404  # nothing half-saved


def test_configurable_built_step_by_step(shop: Api) -> None:
    _champ(shop)
    shop.ok(shop.post("/products", {"product": {"sku": "STEP", "name": "Step", "type_id": "configurable"}}))
    no_options = shop.post("/configurable-products/STEP/child", {"childSku": "MS-Champ-S"})
    assert no_options.status_code == 400
    option_id = shop.ok(
        shop.post(
            "/configurable-products/STEP/options",
            {
                "option": {
                    "attribute_id": "141",
                    "label": "Size",
                    "position": 0,
                    "is_use_default": True,
                    "values": [{"value_index": 9}],
                }
            },
        )
    )
    assert isinstance(option_id, str) and option_id.isdigit()
    for sku in ("MS-Champ-S", "MS-Champ-M"):
        assert shop.ok(shop.post("/configurable-products/STEP/child", {"childSku": sku})) is True
    [option] = shop.ok(shop.get("/configurable-products/STEP/options/all"))
    # like Magento, the option lists the values of its children, not the value_index posted
    parent = shop.ok(shop.get("/products/STEP"))
    assert parent["extension_attributes"]["configurable_product_options"][0]["values"] == [
        {"value_index": 168},
        {"value_index": 169},
    ]
    assert option["id"] == int(option_id)
    assert shop.ok(shop.delete("/configurable-products/STEP/children/MS-Champ-M")) is True
    assert len(shop.ok(shop.get("/configurable-products/STEP/children"))) == 1


def test_bundle_options_and_children(shop: Api) -> None:
    shop.ok(shop.post("/products", {"product": simple("PART-1")}))
    shop.ok(shop.post("/products", {"product": simple("PART-2")}))
    options = [
        {
            "title": "Parts",
            "required": True,
            "type": "checkbox",
            "product_links": [
                {"sku": "PART-1", "qty": 1, "is_default": True, "price": 0, "price_type": 0, "can_change_quantity": 0},
                {"sku": "PART-2", "qty": 2, "is_default": False, "price": 0, "price_type": 0},
            ],
        }
    ]
    body = {
        "sku": "KIT",
        "name": "Kit",
        "type_id": "bundle",
        "price": 50,
        "custom_attributes": [{"attribute_code": "price_type", "value": "1"}],
        "extension_attributes": {"bundle_product_options": options},
    }
    kit = shop.ok(shop.post("/products", {"product": body}))
    assert kit["extension_attributes"]["bundle_product_options"][0]["sku"] == "KIT"
    assert [c["sku"] for c in shop.ok(shop.get("/bundle-products/KIT/children"))] == ["PART-1", "PART-2"]
    shop.ok(shop.put("/products/KIT", {"product": {"sku": "KIT", "extension_attributes": {"website_ids": [1]}}}))
    assert len(shop.ok(shop.get("/bundle-products/KIT/children"))) == 2  # kept when left out
    bad = shop.post(
        "/products",
        {
            "product": {
                **body,
                "sku": "KIT2",
                "name": "Kit 2",
                "extension_attributes": {
                    "bundle_product_options": [{"title": "x", "product_links": [{"sku": "NOPE"}]}]
                },
            }
        },
    )
    assert bad.status_code == 404


# --------------------------------------------------------------------------- prices


def _priced(shop: Api) -> None:
    shop.ok(shop.post("/products", {"product": simple("24-UG04", "Yoga Strap")}))
    shop.ok(shop.post("/products", {"product": simple("KIT", "Kit", type_id="bundle")}))
    _champ(shop)
    options = [{"attribute_id": "141", "label": "Size", "values": [{"value_index": 168}]}]
    shop.ok(
        shop.post(
            "/products",
            {
                "product": {
                    "sku": "MS-Champ",
                    "name": "Champ",
                    "type_id": "configurable",
                    "extension_attributes": {"configurable_product_options": options, "configurable_product_links": []},
                }
            },
        )
    )


def test_base_prices_answer_a_list_of_failures(shop: Api) -> None:
    _priced(shop)
    failures = shop.ok(
        shop.post(
            "/products/base-prices",
            {
                "prices": [
                    {"price": 12, "store_id": 0, "sku": "24-UG04"},
                    {"price": 5, "store_id": 0, "sku": "GHOST"},
                    {"price": -1, "store_id": 0, "sku": "KIT"},
                    {"price": 1, "store_id": 42, "sku": "KIT"},
                ]
            },
        )
    )
    assert [f["parameters"][0] for f in failures] == ["GHOST", "-1", "KIT"]
    assert failures[0]["message"] == "Invalid attribute SKU = %SKU. Row ID: SKU = %SKU, Store ID: %storeId."
    assert shop.ok(shop.post("/products/base-prices-information", {"skus": ["24-UG04"]})) == [
        {"price": 12, "store_id": 0, "sku": "24-UG04"}
    ]
    assert shop.ok(shop.get("/products/24-UG04"))["price"] == 12
    missing = shop.post("/products/base-prices-information", {"skus": ["GHOST"]})
    assert missing.status_code == 404 and missing.json()["parameters"] == {"sku": "GHOST"}


def test_special_price_on_a_configurable_fails_in_the_list_and_bundle_is_a_percentage(shop: Api) -> None:
    _priced(shop)
    row = {"store_id": 0, "price_from": "2026-07-15 00:00:00", "price_to": "2026-07-16 23:59:59"}
    failures = shop.ok(
        shop.post(
            "/products/special-price",
            {
                "prices": [
                    {**row, "price": 8, "sku": "24-UG04"},
                    {**row, "price": 5, "sku": "MS-Champ"},
                    {**row, "price": 150, "sku": "KIT"},
                    {**row, "price": 20, "sku": "KIT"},
                ]
            },
        )
    )
    assert len(failures) == 2
    assert (
        failures[0]["message"].startswith("The product that was requested doesn't exist.")
        and failures[0]["parameters"][0] == "MS-Champ"
    )
    assert failures[1]["message"].startswith("Invalid attribute Price = %price.") and failures[1]["parameters"][:2] == [
        "150",
        "KIT",
    ]
    info = shop.ok(shop.post("/products/special-price-information", {"skus": ["24-UG04", "KIT"]}))
    assert [(r["sku"], r["price"]) for r in info] == [("24-UG04", 8), ("KIT", 20)]
    product = shop.ok(shop.get("/products/24-UG04"))
    assert attr(product, "special_price") == "8.000000" and attr(product, "special_from_date") == row["price_from"]
    # delete needs an exact match: a different end date deletes nothing
    assert (
        shop.ok(
            shop.post(
                "/products/special-price-delete",
                {"prices": [{**row, "price_to": "2026-07-17 00:00:00", "price": 8, "sku": "24-UG04"}]},
            )
        )
        == []
    )
    assert len(shop.ok(shop.post("/products/special-price-information", {"skus": ["24-UG04"]}))) == 1
    assert (
        shop.ok(shop.post("/products/special-price-delete", {"prices": [{**row, "price": 8, "sku": "24-UG04"}]})) == []
    )
    assert shop.ok(shop.post("/products/special-price-information", {"skus": ["24-UG04"]})) == []
    assert attr(shop.ok(shop.get("/products/24-UG04")), "special_price") is None


def test_tier_put_replaces_and_post_adds(shop: Api) -> None:
    _priced(shop)
    tier = {"price_type": "fixed", "website_id": 0, "sku": "24-UG04"}
    assert (
        shop.ok(
            shop.post(
                "/products/tier-prices",
                {
                    "prices": [
                        {**tier, "price": 10, "customer_group": "General", "quantity": 3},
                        {**tier, "price": 8, "customer_group": "General", "quantity": 5},
                    ]
                },
            )
        )
        == []
    )
    assert (
        shop.ok(
            shop.post(
                "/products/tier-prices",
                {
                    "prices": [
                        {**tier, "price": 9, "customer_group": "General", "quantity": 5},
                        {**tier, "price": 7, "customer_group": "ALL GROUPS", "quantity": 10},
                    ]
                },
            )
        )
        == []
    )
    rows = shop.ok(shop.post("/products/tier-prices-information", {"skus": ["24-UG04"]}))
    assert sorted((r["customer_group"], r["quantity"], r["price"]) for r in rows) == [
        ("ALL GROUPS", 10, 7),
        ("General", 3, 10),
        ("General", 5, 9),
    ]
    product_tiers = shop.ok(shop.get("/products/24-UG04"))["tier_prices"]
    assert {
        "customer_group_id": 32000,
        "qty": 10,
        "value": 7,
        "extension_attributes": {"website_id": 0},
    } in product_tiers
    assert (
        shop.ok(
            shop.put(
                "/products/tier-prices",
                {"prices": [{**tier, "price": 5, "customer_group": "NOT LOGGED IN", "quantity": 310}]},
            )
        )
        == []
    )
    rows = shop.ok(shop.post("/products/tier-prices-information", {"skus": ["24-UG04"]}))
    assert rows == [{**tier, "price": 5, "customer_group": "NOT LOGGED IN", "quantity": 310}]
    failures = shop.ok(
        shop.post(
            "/products/tier-prices",
            {
                "prices": [
                    {**tier, "price": 5, "customer_group": "VIP", "quantity": 2},
                    {**tier, "price": 5, "customer_group": " General", "quantity": 2},
                    {**tier, "sku": "MS-Champ", "price": 5, "customer_group": "General", "quantity": 2},
                    {**tier, "sku": "KIT", "price": 5, "customer_group": "General", "quantity": 2},
                ]
            },
        )
    )
    assert [f["message"].split(" Row ID")[0] for f in failures] == [
        "No such entity with Customer Group = %customerGroup.",
        "No such entity with Customer Group = %customerGroup.",
        "Invalid attribute SKU = %SKU.",
        "Invalid attribute Price Type = %priceType.",
    ]
    assert (
        shop.ok(
            shop.post(
                "/products/tier-prices-delete",
                {"prices": [{**tier, "price": 5, "customer_group": "NOT LOGGED IN", "quantity": 310}]},
            )
        )
        == []
    )
    assert shop.ok(shop.post("/products/tier-prices-information", {"skus": ["24-UG04"]})) == []


def test_customer_groups(shop: Api) -> None:
    groups = shop.ok(shop.get("/customerGroups/search"))
    assert [g["code"] for g in groups["items"]] == ["NOT LOGGED IN", "General", "Wholesale", "Retailer"]
    assert shop.ok(shop.get("/customerGroups/2"))["code"] == "Wholesale"
    assert shop.get("/customerGroups/99").status_code == 404


# --------------------------------------------------------------------------- stock


def test_source_items_take_many_skus_per_call_and_fail_as_a_whole(shop: Api) -> None:
    for sku in ("new_product1", "new_product2"):
        shop.ok(shop.post("/products", {"product": simple(sku)}))
    rows = [
        {"sku": "new_product1", "source_code": "central", "quantity": 1000, "status": 1},
        {"sku": "new_product1", "source_code": "east", "quantity": 2000, "status": 1},
        {"sku": "new_product2", "source_code": "central", "quantity": 500, "status": 1},
    ]
    assert shop.ok(shop.post("/inventory/source-items", {"sourceItems": rows})) == []
    found = shop.ok(
        shop.get(
            "/inventory/source-items",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "sku",
                "searchCriteria[filter_groups][0][filters][0][value]": "new_product1",
            },
        )
    )
    assert sorted((r["source_code"], r["quantity"]) for r in found["items"]) == [
        ("central", 1000),
        ("default", 0),
        ("east", 2000),
    ]
    bad = shop.post(
        "/inventory/source-items",
        {
            "sourceItems": [
                {"sku": "new_product2", "source_code": "central", "quantity": 1, "status": 1},
                {"sku": "ghost", "source_code": "west", "quantity": 1, "status": 1},
            ]
        },
    )
    assert bad.status_code == 400 and bad.json()["message"] == "Validation Failed" and len(bad.json()["errors"]) == 2
    assert (
        shop.ok(shop.get("/inventory/get-product-salable-quantity/new_product2/1")) == 500
    )  # nothing of the bad call saved
    assert (
        shop.ok(
            shop.post(
                "/inventory/source-items-delete", {"sourceItems": [{"sku": "new_product1", "source_code": "east"}]}
            )
        )
        == []
    )
    assert shop.ok(shop.get("/inventory/get-product-salable-quantity/new_product1/1")) == 1000


def test_salable_quantity_subtracts_open_reservations_until_shipped(shop: Api) -> None:
    shop.ok(shop.post("/products", {"product": simple("24-MB01", "Joust Duffle Bag", price=34)}))
    shop.ok(
        shop.post(
            "/inventory/source-items",
            {"sourceItems": [{"sku": "24-MB01", "source_code": "central", "quantity": 10, "status": 1}]},
        )
    )
    catalog = [shop.ok(shop.get("/products/24-MB01"))]
    order = shop.ok(
        shop.post("/orders", {"entity": build_order(catalog, [CartLine("24-MB01", 3)], customer=sample_customer())})
    )
    assert shop.ok(shop.get("/inventory/get-product-salable-quantity/24-MB01/1")) == 7
    assert shop.ok(shop.get("/inventory/is-product-salable/24-MB01/1")) is True
    item_id = order["items"][0]["item_id"]
    assert (
        shop.client.post(
            f"{ALL}/order/{order['entity_id']}/ship",
            json={"items": [{"order_item_id": item_id, "qty": 2}]},
            headers=shop.auth,
        ).status_code
        == 200
    )
    central = shop.ok(
        shop.get(
            "/inventory/source-items",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "source_code",
                "searchCriteria[filter_groups][0][filters][0][value]": "central",
            },
        )
    )
    assert central["items"][0]["quantity"] == 8  # the shipment deducted from the source
    assert shop.ok(shop.get("/inventory/get-product-salable-quantity/24-MB01/1")) == 7
    shop.ok(
        shop.post(
            "/inventory/source-items",
            {"sourceItems": [{"sku": "24-MB01", "source_code": "central", "quantity": 1, "status": 1}]},
        )
    )
    assert shop.ok(shop.get("/inventory/get-product-salable-quantity/24-MB01/1")) == 0
    assert shop.ok(shop.get("/inventory/is-product-salable/24-MB01/1")) is False
    assert shop.get("/inventory/get-product-salable-quantity/24-MB01/9").status_code == 404


def test_legacy_stock_item_mirrors_the_default_source(shop: Api) -> None:
    made = shop.ok(
        shop.post(
            "/products",
            {"product": simple("LEG-1", extension_attributes={"stock_item": {"qty": "10", "is_in_stock": True}})},
        )
    )
    assert made["extension_attributes"]["stock_item"]["qty"] == 10
    item = shop.ok(shop.get("/stockItems/LEG-1"))
    assert item["qty"] == 10 and item["is_in_stock"] is True and item["item_id"] == made["id"]
    answer = shop.ok(
        shop.put(f"/products/LEG-1/stockItems/{item['item_id']}", {"stockItem": {"qty": 30, "is_in_stock": True}})
    )
    assert answer == str(made["id"])
    found = shop.ok(
        shop.get(
            "/inventory/source-items",
            **{
                "searchCriteria[filter_groups][0][filters][0][field]": "sku",
                "searchCriteria[filter_groups][0][filters][0][value]": "LEG-1",
            },
        )
    )
    assert found["items"] == [{"sku": "LEG-1", "source_code": "default", "quantity": 30, "status": 1}]
    shop.ok(
        shop.post(
            "/inventory/source-items",
            {"sourceItems": [{"sku": "LEG-1", "source_code": "default", "quantity": 0, "status": 0}]},
        )
    )
    assert shop.ok(shop.get("/stockItems/LEG-1"))["is_in_stock"] is False


def test_sources_and_stocks(shop: Api) -> None:
    codes = [s["source_code"] for s in shop.ok(shop.get("/inventory/sources"))["items"]]
    assert codes == ["central", "default", "east"]
    invalid = shop.post("/inventory/sources", {"source": {"source_code": "west", "enabled": True}})
    assert invalid.status_code == 400 and {e["parameters"]["field"] for e in invalid.json()["errors"]} == {
        "name",
        "country_id",
        "postcode",
    }
    assert (
        shop.ok(
            shop.post(
                "/inventory/sources",
                {
                    "source": {
                        "source_code": "west",
                        "name": "West",
                        "enabled": True,
                        "country_id": "US",
                        "postcode": "94105",
                    }
                },
            )
        )
        == []
    )
    assert shop.ok(shop.get("/inventory/sources/west"))["name"] == "West"
    assert shop.get("/inventory/sources/nowhere").status_code == 404
    assert shop.ok(shop.get("/inventory/stocks"))["items"][0]["name"] == "Default Stock"
    links = shop.ok(shop.get("/inventory/stock-source-links"))
    assert {(x["source_code"], x["priority"]) for x in links["items"]} == {("default", 1), ("central", 2), ("east", 3)}


# --------------------------------------------------------------------------- bulk and seed


def test_async_bulk_is_processed_at_once(shop: Api) -> None:
    body = [{"product": simple("B-1", "Bulk one")}, {"product": simple("B-2", "Bulk one")}]
    answer = shop.ok(shop.client.post("/rest/all/async/bulk/V1/products", json=body, headers=shop.auth))
    assert answer["errors"] is False and [i["status"] for i in answer["request_items"]] == ["accepted", "accepted"]
    status = shop.ok(shop.get(f"/bulk/{answer['bulk_uuid']}/status"))
    assert [op["status"] for op in status["operations_list"]] == [1, 3]
    assert status["operations_list"][1]["result_message"] == "URL key for specified store already exists."
    assert shop.get("/products/B-1").status_code == 200 and shop.get("/products/B-2").status_code == 404


def test_seeded_luma_catalog_keeps_working(api: Api) -> None:
    from sandbox.sims.magento_orders import sample_catalog

    seeded = api.seed({"products": sample_catalog()})
    assert len(seeded["products"]) == len(sample_catalog())
    radiant = api.ok(api.get("/products/WS12", scope=DEFAULT))
    assert radiant["extension_attributes"]["configurable_product_links"] == [1553, 1554, 1555]
    assert api.ok(api.get("/stockItems/24-MB01"))["qty"] == 100
    assert api.ok(api.get("/inventory/get-product-salable-quantity/24-MB01/1")) == 100


def test_a_search_by_sku_finds_what_a_search_over_every_product_finds(api: Api) -> None:
    """The sim looks only at the SKUs a ``sku`` eq/in filter group names (``_sku_candidates``);
    the answer is the full search's, case-insensitive as MySQL compares, other groups still applied."""
    from sandbox.sims import magento_catalog

    for sku in ("Tea-1", "TEA-2", "tea-3", "Jam-1"):
        api.ok(api.post("/products", {"product": simple(sku, price=5 if sku != "TEA-2" else 9)}))

    def search(**params: str) -> list[str]:
        return sorted(p["sku"] for p in api.ok(api.get("/products", **params))["items"])

    queries = [
        {
            "searchCriteria[filterGroups][0][filters][0][field]": "sku",
            "searchCriteria[filterGroups][0][filters][0][value]": "tea-1,tea-2,NONE",
            "searchCriteria[filterGroups][0][filters][0][conditionType]": "in",
        },
        {
            "searchCriteria[filterGroups][0][filters][0][field]": "sku",
            "searchCriteria[filterGroups][0][filters][0][value]": "TEA-3",
            "searchCriteria[filterGroups][1][filters][0][field]": "price",
            "searchCriteria[filterGroups][1][filters][0][value]": "5",
        },
        {
            "searchCriteria[filterGroups][0][filters][0][field]": "sku",
            "searchCriteria[filterGroups][0][filters][0][value]": "Tea-%",
            "searchCriteria[filterGroups][0][filters][0][conditionType]": "like",
        },
    ]
    narrowed = [search(**q) for q in queries]
    real = magento_catalog._sku_candidates
    magento_catalog._sku_candidates = lambda products, criteria: list(products)  # type: ignore[assignment]
    try:
        assert narrowed == [search(**q) for q in queries]
    finally:
        magento_catalog._sku_candidates = real
    assert narrowed[0] == ["TEA-2", "Tea-1"] and narrowed[1] == ["tea-3"]
