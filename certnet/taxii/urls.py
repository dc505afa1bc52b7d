from django.urls import path, re_path

from certnet.taxii import views

app_name = "taxii"

# Ids are taken as any path segment and checked by the views, so a malformed one is a TAXII 404 rather
# than the site's HTML page.
urlpatterns = [
    path("", views.discovery, name="discovery"),
    path("api/", views.api_root, name="api-root"),
    path("api/collections/", views.collections, name="collections"),
    path("api/collections/<str:collection_id>/", views.collection, name="collection"),
    path("api/collections/<str:collection_id>/objects/", views.objects, name="objects"),
    path("api/collections/<str:collection_id>/objects/<str:object_id>/", views.object_detail, name="object"),
    path(
        "api/collections/<str:collection_id>/objects/<str:object_id>/versions/",
        views.object_versions,
        name="versions",
    ),
    path("api/collections/<str:collection_id>/manifest/", views.manifest, name="manifest"),
    # taxii2-client polls the status it was given at a URL without the trailing slash.
    re_path(r"^api/status/(?P<status_id>[^/]+)/?$", views.status, name="status"),
    re_path(r"^(?P<path>.*)$", views.unknown),
]
