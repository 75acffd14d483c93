"""A loopback MTProto server: Telegram's user-account side for the real Telethon client.

See `server.MTProtoServer` (the server and, through `world.World`, the scripted Telegram) and
`fixtures` (the `telegram` pytest fixture and `make_client`).
"""

from tests.support.mtproto.server import MTProtoServer
from tests.support.mtproto.world import Account, ChannelPost, Forward, WorldChannel

__all__ = ["Account", "ChannelPost", "Forward", "MTProtoServer", "WorldChannel"]
