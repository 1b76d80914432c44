"""A stand-in for a provider's client that intercepts a few methods and forwards the rest.

The application's client object is left untouched (other code may use it unobserved);
the proxy answers every attribute from it, except the routes it was given, which lead
to wrapped methods, possibly several attributes deep (client.chat.completions.create).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

# A route maps an attribute name to either deeper routes or a function that takes the
# original attribute and returns what the proxy hands out instead.
Routes = dict[str, Union["Routes", Callable[[Any], Any]]]


class InterceptingProxy:
    __slots__ = ("__wrapped__", "_routes")

    def __init__(self, target: Any, routes: Routes) -> None:
        object.__setattr__(self, "__wrapped__", target)
        object.__setattr__(self, "_routes", routes)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__wrapped__, name)
        route = self._routes.get(name)
        if route is None:
            return value
        if isinstance(route, dict):
            return InterceptingProxy(value, route)
        return route(value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped__, name, value)

    def __dir__(self) -> list[str]:
        return dir(self.__wrapped__)

    def __repr__(self) -> str:
        return f"<observed {self.__wrapped__!r}>"


def rewrapping(routes: Routes) -> Callable[[Any], Any]:
    """A route for methods that return a new client (with_options, copy): observe that one too."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def observed(*args: Any, **kwargs: Any) -> Any:
            return InterceptingProxy(method(*args, **kwargs), routes)

        return observed

    return wrap
