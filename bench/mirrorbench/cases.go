package mirrorbench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

// item is a catalogue entry cases are opened for.
type item struct {
	kind casework.Kind
	code string
	name string
}

// items: mostly applications, some grievances. Only "submitted" exists as a status yet, so kind
// and item code are what makes listings selective.
var items = []item{
	{casework.KindApplication, "GA-001", "户籍证明"},
	{casework.KindApplication, "GA-014", "居住证办理"},
	{casework.KindApplication, "MZ-003", "最低生活保障申请"},
	{casework.KindApplication, "MZ-011", "临时救助申请"},
	{casework.KindApplication, "RS-002", "城乡居民养老保险参保登记"},
	{casework.KindApplication, "RS-007", "就业登记"},
	{casework.KindApplication, "WJ-004", "生育登记"},
	{casework.KindApplication, "CL-001", "残疾人证办理"},
	{casework.KindApplication, "YB-005", "医保异地就医备案"},
	{casework.KindApplication, "ZJ-009", "农村危房改造申请"},
	{casework.KindApplication, "NY-006", "耕地地力保护补贴"},
	{casework.KindApplication, "JY-003", "学生资助申请"},
	{casework.KindGrievance, "SQ-001", "物业纠纷"},
	{casework.KindGrievance, "SQ-004", "噪声扰民"},
	{casework.KindGrievance, "SQ-007", "道路破损"},
	{casework.KindGrievance, "SQ-010", "拖欠工资"},
	{casework.KindGrievance, "SQ-012", "环境卫生"},
}

// grievanceShare is the share of cases that are grievances.
const grievanceShare = 0.25

var (
	applications, grievances []item
	surnames                 = strings.Fields("王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 高")
	givenNames               = strings.Fields("伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞")
	regions                  = strings.Fields("510104 510105 510106 510107 510108 510112 510113")
	materials                = strings.Fields("身份证复印件 户口簿复印件 申请表 收入证明 照片 病历资料 房产证明")
)

func init() {
	for _, it := range items {
		if it.kind == casework.KindGrievance {
			grievances = append(grievances, it)
		} else {
			applications = append(applications, it)
		}
	}
}

// randomSubmission builds a valid submission, as a window clerk would hand in, decided where it
// is accepted; label makes its material digests unique.
func randomSubmission(rng *rand.Rand, label string) *casework.Submission {
	it := applications[rng.IntN(len(applications))]
	if rng.Float64() < grievanceShare {
		it = grievances[rng.IntN(len(grievances))]
	}
	name := surnames[rng.IntN(len(surnames))] + givenNames[rng.IntN(len(givenNames))]
	sub := &casework.Submission{
		Kind: it.kind, ItemCode: it.code, Title: it.name + "：" + name,
		Applicant: &casework.Applicant{Name: name, IDNumber: idNumber(rng), Phone: phone(rng)},
		Actor:     fmt.Sprintf("窗口 %d", rng.IntN(6)+1),
		RequestID: fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()),
	}
	if it.kind == casework.KindGrievance {
		sub.Description = fmt.Sprintf("群众%s反映%s问题，已登记，请核实处理并答复。", name, it.name)
	} else {
		sub.Description = fmt.Sprintf("申请人%s申请办理%s，材料已现场核验。", name, it.name)
	}
	for i := range 1 + rng.IntN(3) {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", label, i))
		sub.Materials = append(sub.Materials, casework.Material{
			Name: materials[rng.IntN(len(materials))], Digest: hex.EncodeToString(sum[:]), Pages: 1 + rng.IntN(5),
		})
	}
	return sub
}

// idNumber is a well-formed resident identity number (region, birth date, sequence, checksum).
func idNumber(rng *rand.Rand) string {
	birth := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(65*365))
	s := regions[rng.IntN(len(regions))] + birth.Format("20060102") + fmt.Sprintf("%03d", rng.IntN(1000))
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		sum += int(s[i]-'0') * w
	}
	return s + string("10X98765432"[sum%11])
}

func phone(rng *rand.Rand) string {
	return fmt.Sprintf("1%d%09d", []int{3, 5, 8}[rng.IntN(3)], rng.IntN(1_000_000_000))
}

// perHolder is the most cases one synthetic site holds when cases are spread over townships
// townships of communities communities each (see generator.holder).
func perHolder(cases, townships, communities int) int {
	perTownship := (cases + townships - 1) / townships
	cycle := 2*communities + 1
	return (perTownship + cycle - 1) / cycle * 2
}

// generator builds a synthetic township's feed: entry seq (from 1) is always the same case, so
// a puller that reconnects from its committed cursor gets exactly what it missed. Each case is
// accepted (casework.Accept) at one of the township's communities, or at the township itself,
// and its creation times step forward through the feed, interleaved with the other townships'.
type generator struct {
	site        string
	communities []string
	index       int // this township's place among the townships
	townships   int
	total       uint64
	base        time.Time
	step        time.Duration
	loc         *time.Location
}

// holder returns the site that holds the j-th case (from 0) of the feed and the case's place
// (from 0) among that site's cases. In each cycle of 2c+1 cases, every one of the c communities
// gets two and the township one.
func (g *generator) holder(j uint64) (string, uint64) {
	nc := uint64(len(g.communities))
	cycle, pos := j/(2*nc+1), j%(2*nc+1)
	if pos == 2*nc {
		return g.site, cycle
	}
	return g.communities[pos%nc], cycle*2 + pos/nc
}

// createdAt is when the j-th case of the feed was accepted.
func (g *generator) createdAt(j uint64) time.Time {
	return g.base.Add(time.Duration(j*uint64(g.townships)+uint64(g.index)) * g.step)
}

// entry returns feed entry seq.
func (g *generator) entry(seq uint64) (sitestate.FeedEntry, error) {
	j := seq - 1
	holder, k := g.holder(j)
	at := g.createdAt(j)
	rng := rand.New(rand.NewPCG(uint64(g.index)+1, seq))
	sub := randomSubmission(rng, fmt.Sprintf("%s/%d", g.site, seq))
	// Numbers count on through the days instead of restarting daily: they stay unique, which
	// is all the mirror needs of them.
	number := casework.FormatNumber(holder, at.In(g.loc).Format("20060102"), uint32(k+1))
	c, err := casework.Accept(sub, casework.Acceptance{
		Number: number, Site: holder, At: at,
		QueryCodeHash: casework.HashQueryCode(sub.RequestID, fmt.Sprintf("%06d", rng.IntN(1_000_000))),
	})
	if err != nil {
		return sitestate.FeedEntry{}, fmt.Errorf("mirrorbench: synthetic case %s: %w", number, err)
	}
	return sitestate.FeedEntry{Seq: seq, Origin: holder, At: at, Case: c}, nil
}
