from django.urls import include, path

from certnet.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("taxii2/", include("certnet.taxii.urls")),
    path("", include("certnet.web.urls")),
]
