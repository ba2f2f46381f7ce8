#!/usr/bin/env bash
# Builds the demo's large-screen content in OUT_DIR: H.264 clips and images drawn here by ffmpeg (nothing is
# downloaded) beside a copy of config/demo-content/content.toml. `make demo` runs it, then signs the folder
# with `kiosk content sign` and serves it with `kiosk content serve`. Files already built are kept.
#   usage: scripts/make-demo-content.sh OUT_DIR
set -euo pipefail
export LC_ALL=C.UTF-8          # ${#title} counts characters, not bytes
out=${1:?usage: $0 OUT_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v ffmpeg >/dev/null || { echo "make-demo-content: ffmpeg is not installed (apt-get install ffmpeg)" >&2; exit 1; }
mkdir -p "$out/video" "$out/images" "$out/covers"
cp "$root/config/demo-content/content.toml" "$out/content.toml"

# Noto Sans CJK Bold (fonts-noto-cjk): drawtext takes the collection's first face, whose glyphs cover Chinese.
FONT=$(fc-match -f '%{file}' 'Noto Sans CJK SC:style=Bold' 2>/dev/null || true)
[[ $FONT == *CJK* ]] || { echo "make-demo-content: no Noto Sans CJK font (apt-get install fonts-noto-cjk)" >&2; exit 1; }
say() { printf '[demo content] %s\n' "$*" >&2; }

# A fresh build when this script changed since a file was made.
fresh() { [[ -s $1 && $1 -nt $0 ]]; }

text() {  # text TEXT SIZE Y [COLOUR] [EXTRA]: one centred line for a -vf chain
  printf "drawtext=fontfile='%s':text='%s':fontsize=%s:fontcolor=%s:x=(w-text_w)/2:y=%s%s" \
    "$FONT" "${1//:/\\:}" "$2" "${4:-white}" "$3" "${5:-}"
}

clip() {  # clip NAME SECONDS GRADIENT_COLOURS FILTERS: a 1280x720 30 fps H.264 clip with a soft chord (AAC)
  local file="$out/video/$1.mp4"
  fresh "$file" && return
  say "encoding $file"
  # The chord is heard only on a bookcase with [screen] video_volume above 0 (muted by default).
  ffmpeg -hide_banner -loglevel error -y -f lavfi \
    -i "gradients=s=1280x720:r=30:d=$2:speed=0.02:$3" -f lavfi \
    -i "aevalsrc='0.06*sin(2*PI*262*t)+0.05*sin(2*PI*330*t)+0.04*sin(2*PI*392*t)':s=48000:d=$2" \
    -vf "$4" -af "afade=t=in:d=1,afade=t=out:st=$(($2 - 1)):d=1" \
    -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -c:a aac -b:a 96k -movflags +faststart "$file"
}

still() {  # still FILE WxH COLOUR FILTERS: one PNG
  fresh "$1" && return
  say "drawing $1"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "color=c=$3:s=$2:d=1" -vf "$4" -frames:v 1 "$1"
}

clip welcome 10 "c0=0x1e5aa8:c1=0x2a9d8f:c2=0x264653:n=3" \
  "$(text '闵行区图书馆 · 城市书柜' 84 200),$(text '刷读者证 · 借书还书 · 通借通还' 52 340),$(text '十五分钟阅读圈' 44 470 0xffe8a3 ":alpha='min(1,t/2)'")"
clip digital 10 "c0=0x3d2c8d:c1=0x916bbf:c2=0x1d3557:n=3" \
  "$(text '数字资源 凭读者证免费使用' 64 90),$(text '中国知网 · 万方数据 · 超星数字图书 · 读秀知识库' 42 'h-(t*90)+40'),$(text '龙源数字期刊 · 维普期刊 · 云图有声' 42 'h-(t*90)+120'),$(text '贝贝国学 · 中国近代影像资料库 · 律商网 · 笔杆网' 42 'h-(t*90)+200')"
clip marathon 8 "c0=0xe76f51:c1=0xf4a261:c2=0xe9c46a:n=3" \
  "$(text '阅读马拉松' 120 180),$(text '闵图妈妈小屋 · 敏读会 · 文化配送' 52 380),$(text '关注闵图微信公众号报名' 44 500 0x1d3557)"

still "$out/images/legal-aid.png" 1280x720 0x264653 \
  "$(text '免费法律咨询' 110 170),$(text '每周六 13:00–15:00（节假日除外）' 60 360),$(text '闵行区图书馆总馆' 52 480 0xffe8a3)"

covers=(gaokao:高考1978:0x8d0801 dunhuang:我心归处是敦煌:0xbc6c25 zacao:杂草记:0x386641
        duanwu:端午:0x2a9d8f hulu:百年沪闵路:0x3a5a40 math:数学的故事:0x1d3557
        sijun:思君令人老，努力加餐饭:0x6d597a)
for entry in "${covers[@]}"; do
  IFS=: read -r name title colour <<<"$entry"
  size=$(( 480 / ${#title} < 56 ? 480 / ${#title} : 56 ))    # a long title in smaller type, inside the frame
  still "$out/covers/$name.png" 600x840 "$colour" \
    "drawbox=x=40:y=40:w=520:h=760:color=white@0.85:t=6,$(text "$title" "$size" 360),$(text '闵图荐书' 36 700 0xffe8a3)"
done
say "done: $out"
