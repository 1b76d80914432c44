"""Streaming responses: the same items reach the application, timed on the way through.

A streamed call is recorded when the stream ends: exhausted, closed, left through its
`with` block, broken by an error, or garbage-collected half read (then marked
stream_incomplete). The time to first token is when the first item carrying output
arrived, not when the response headers did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from observatory_sdk.integrations._generation import Generation, StreamObserver

if TYPE_CHECKING:
    from observatory_sdk.integrations._calls import ObservedCall


class _StreamBase:
    def __init__(self, stream: Any, generation: Generation, observer: StreamObserver) -> None:
        self._stream = stream
        self._generation = generation
        self._observer = observer
        self._iterator: Any = None
        self._exhausted = False

    def _seen(self, item: Any) -> bool:
        visible = self._observer.observe(item)
        if self._observer.has_output:
            self._generation.first_token()
        return visible

    def _finish(self) -> None:
        self._generation.succeed(self._observer.fields(), stream_incomplete=not self._exhausted)

    def _fail(self, error: BaseException) -> None:
        self._generation.fail(error, self._observer.fields())

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the proxy lacks; looked up in __dict__ so that a proxy whose
        # __init__ never ran (seen from __del__) does not recurse.
        stream = self.__dict__.get("_stream")
        if stream is None:
            raise AttributeError(name)
        return getattr(stream, name)

    def __del__(self) -> None:
        try:
            self._finish()
        except Exception:
            pass


class ObservedStream(_StreamBase):
    def __iter__(self) -> ObservedStream:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self._stream)
        while True:
            try:
                item = next(self._iterator)
            except StopIteration:
                self._exhausted = True
                self._finish()
                raise
            except BaseException as error:
                self._fail(error)
                raise
            if self._seen(item):
                return item

    def __enter__(self) -> ObservedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._finish()


class ObservedAsyncStream(_StreamBase):
    def __aiter__(self) -> ObservedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._stream.__aiter__()
        while True:
            try:
                item = await self._iterator.__anext__()
            except StopAsyncIteration:
                self._exhausted = True
                self._finish()
                raise
            except BaseException as error:
                self._fail(error)
                raise
            if self._seen(item):
                return item

    async def __aenter__(self) -> ObservedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._finish()


def observed_stream(stream: Any, generation: Generation, observer: StreamObserver) -> Any:
    if hasattr(stream, "__aiter__"):
        return ObservedAsyncStream(stream, generation, observer)
    return ObservedStream(stream, generation, observer)


class _ManagerBase:
    """Anthropic's messages.stream(): a context manager that opens the request on entry
    and yields a MessageStream reading a raw event stream, which is the part observed."""

    def __init__(self, manager: Any, call: ObservedCall) -> None:
        self._manager = manager
        self._call = call
        self._message_stream: Any = None

    def _observe(self, message_stream: Any) -> Any:
        raw = getattr(message_stream, "_raw_stream", None)
        if raw is not None:
            message_stream._raw_stream = observed_stream(raw, self._call.generation, self._call.new_stream_observer())
        self._message_stream = message_stream
        return message_stream

    def _settle(self) -> None:
        # Reached only when the raw stream could not be wrapped (a client version that
        # reads it differently): the accumulated message still tells model, usage and stop.
        try:
            snapshot = self._message_stream.current_message_snapshot
        except Exception:
            snapshot = None
        self._call.generation.succeed(self._call.response_fields(snapshot) if snapshot is not None else {})

    def __getattr__(self, name: str) -> Any:
        manager = self.__dict__.get("_manager")
        if manager is None:
            raise AttributeError(name)
        return getattr(manager, name)


class ObservedStreamManager(_ManagerBase):
    def __enter__(self) -> Any:
        try:
            return self._observe(self._manager.__enter__())
        except BaseException as error:
            self._call.generation.fail(error)
            raise

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._manager.__exit__(*exc_info)
        finally:
            self._settle()


class ObservedAsyncStreamManager(_ManagerBase):
    async def __aenter__(self) -> Any:
        try:
            return self._observe(await self._manager.__aenter__())
        except BaseException as error:
            self._call.generation.fail(error)
            raise

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc_info)
        finally:
            self._settle()


def observed_stream_manager(manager: Any, call: ObservedCall) -> Any:
    if hasattr(manager, "__aenter__"):
        return ObservedAsyncStreamManager(manager, call)
    return ObservedStreamManager(manager, call)
