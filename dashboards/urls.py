from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboards.views.home import home

urlpatterns = [
    path("api/v1/", include("dashboards.api.urls")),
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="dashboards/login.html",
                                                redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("p/<slug:slug>/", include("dashboards.page_urls")),
]
