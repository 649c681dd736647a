"""Spiking speed channels: a spatial kernel followed by parallel leaky integrate-and-fire "box" channels.

The input is an *event* stream (pixels that changed, as from an event camera) of a moving disk. A disk-shaped
kernel turns the events near each pixel into an input current that grows with the disk's speed: a faster edge
sweeps more pixels per time step. Each channel is a sheet of LIF box neurons (norse ``LIFBoxCell``, docs/reference.md
§7: ``v += dt * tau_mem_inv * (v_leak - v + i)``, spike when ``v > v_th``, then reset) with its own membrane
time constant and threshold, so channel ``c`` fires only above some speed. Two optional stages bound a channel to a
speed *band*: a centre-surround kernel (events that spill past the centre into the surround annulus, as those of
fast edges do, subtract) and inhibition from the faster channels to the slower ones.

Channels are ordered from slow to fast: channel ``c`` is inhibited by channels ``c' > c``.

Modules: ``channels`` (the LIF box step, kernels, :class:`SpeedChannels`), ``events`` (event frames of stimuli and
files), ``tuning`` (speed tuning and selectivity, fitting channels and inhibition, comparison with network units).
"""

from .channels import HAVE_NORSE, SpeedChannels, SpikingConfigError, disk_kernel, lif_box_step
from .events import (
    event_file_summary,
    events_to_frames,
    load_event_tensor,
    occupancy_to_events,
    save_event_tensor,
    split_by_speed,
    stimulus_event_frames,
)
from .tuning import (
    channel_selectivity,
    channels_from_params,
    compare_speed_tuning,
    dnn_speed_responses,
    fit_channels,
    fit_inhibition,
    localisation_error,
    selectivity_index,
    speed_tuning,
    unit_speed_tuning,
    write_speed_channels_h5,
)

__all__ = [
    "HAVE_NORSE", "SpeedChannels", "SpikingConfigError", "channel_selectivity", "channels_from_params",
    "compare_speed_tuning", "disk_kernel", "dnn_speed_responses", "event_file_summary", "events_to_frames",
    "fit_channels", "fit_inhibition", "lif_box_step", "load_event_tensor", "localisation_error",
    "occupancy_to_events", "save_event_tensor", "selectivity_index", "speed_tuning", "split_by_speed",
    "stimulus_event_frames", "unit_speed_tuning", "write_speed_channels_h5",
]
