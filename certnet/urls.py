from django.urls import include, path

from certnet.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("", include("certnet.web.urls")),
]
