package casework_test

import (
	"fmt"
	"time"

	"github.com/govgrid/govgrid/casework"
)

func ExampleAccept() {
	sub := &casework.Submission{
		Kind:      casework.KindApplication,
		ItemCode:  "QT-0010",
		Title:     "居住证办理",
		Applicant: &casework.Applicant{Name: "张三", IDNumber: "63010219900101123X", Phone: "13800138000"},
		Materials: []casework.Material{{Name: "身份证复印件", Pages: 2}},
		RequestID: "req-1",
	}
	// The site leader chooses the number, the time and the query code before proposing.
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.FixedZone("CST", 8*3600))
	secret := make([]byte, 32) // the grid secret (pki: grid.secret); zeros only in an example
	c, err := casework.Accept(sub, casework.Acceptance{
		Number:        casework.FormatNumber("cd-dgdj-ngj", at.Format("20060102"), 42),
		Site:          "cd-dgdj-ngj",
		At:            at,
		QueryCodeHash: casework.QueryCodeMAC(secret, sub.RequestID, "123456"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Number, c.Status, "version", c.Version)
	fmt.Println(len(c.History), "event:", c.History[0].Type, "at", c.History[0].At.Format(time.RFC3339))
	fmt.Println("history verifies:", c.VerifyHistory() == nil)
	fmt.Println("query code checks:", c.CheckQueryCode(secret, "123456"))
	fmt.Println("listed as:", casework.MaskIDNumber(c.Applicant.IDNumber))

	// An invalid submission is refused with every problem named.
	sub.Applicant = nil
	sub.Title = ""
	_, err = casework.Accept(sub, casework.Acceptance{})
	fmt.Println(err)
	// Output:
	// cd-dgdj-ngj-20261125-000042 submitted version 1
	// 1 event: submitted at 2026-11-25T09:30:00+08:00
	// history verifies: true
	// query code checks: true
	// listed as: 6301**********123X
	// invalid request: title: is required; applicant: is required
}

func ExampleParseNumber() {
	site, day, seq, err := casework.ParseNumber("cd-dgdj-ngj-20261125-000042")
	fmt.Println(site, day, seq, err)

	_, _, _, err = casework.ParseNumber("cd-dgdj-ngj-20261325-000042")
	fmt.Println(err)
	// Output:
	// cd-dgdj-ngj 20261125 42 <nil>
	// casework: "cd-dgdj-ngj-20261325-000042" has no valid date
}
