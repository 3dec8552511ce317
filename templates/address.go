package templates

import (
	"fmt"
	"strings"
)

// addressProblems are the sentences a guest reads next to the address field,
// by the reason the domain gives for refusing an address
// (flow.AddressReason); %s, where present, is the character or the limit.
// They are English for now; the pages' other languages come with them.
var addressProblems = map[string]string{
	"empty":           "Enter your email address.",
	"too_long":        "An address is at most %s characters.",
	"control":         "The address contains a character that can't be part of an address. Type it again.",
	"at_sign":         "An address has exactly one @, like name@example.com.",
	"local_empty":     "The part before @ is empty.",
	"local_too_long":  "The part before @ is at most %s characters.",
	"local_dots":      "Dots may not start, end or repeat in the part before @.",
	"local_non_ascii": "Only ASCII letters, digits and . _ + - are accepted before @.",
	"routing":         "%q routes mail through another host and is not accepted before @.",
	"local_char":      "%q is not allowed before @.",
	"domain":          "The part after @ is not a domain that can receive mail, like example.com.",
}

// AddressProblem is the sentence for a refused address's reason and detail.
func AddressProblem(reason, detail string) string {
	msg, ok := addressProblems[reason]
	if !ok {
		return "This is not an email address we can send a code to."
	}
	if strings.Contains(msg, "%") {
		return fmt.Sprintf(msg, detail)
	}
	return msg
}
