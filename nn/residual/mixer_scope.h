// Whether the residual being built joins a mixer sublayer or an FFN one. The block opens a
// MixerSublayer scope around each sublayer it builds; a residual kind that treats the two
// differently (PanGu-π's augmented shortcut, nn/ffn/pangu_pi.h, beside mixers only) reads
// building_mixer_sublayer() in its `make`. Outside any scope it is true.
#pragma once

namespace tz::nn {

class MixerSublayer {
 public:
  explicit MixerSublayer(bool mixer);
  ~MixerSublayer();
  MixerSublayer(const MixerSublayer&) = delete;
  MixerSublayer& operator=(const MixerSublayer&) = delete;

 private:
  bool previous_;
};

bool building_mixer_sublayer();

}  // namespace tz::nn
