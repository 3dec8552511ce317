package templates

import (
	"fmt"
	"time"
)

// strings of one language for the code email. The %s verbs are filled in
// order by localize.
type catalog struct {
	Subject   string // display name
	Intro     string // display name
	Validity  string // duration, expiry time
	Resource  string // path
	Origin    string // client IP
	OriginUA  string // client IP, browser
	NotYou    string
	NotMeLink string // followed by the link
	Never     string
	Units     [3][2]string // second, minute, hour: singular, plural
	Unknown   string       // an unknown client address
	TimeStyle string       // layout of the expiry time
}

var catalogs = map[string]catalog{
	"en": {
		Subject:   "Your sign-in code for %s",
		Intro:     "Your sign-in code for %s is:",
		Validity:  "It works once, for %s (until %s).",
		Resource:  "You asked to open: %s",
		Origin:    "The request came from %s.",
		OriginUA:  "The request came from %s, using %s.",
		NotYou:    "Didn't ask for this code? Someone typed your address into the sign-in page. You can ignore this email: without the code nobody can sign in as you.",
		NotMeLink: "If you did not ask for it, this link cancels the code and stops codes to your address for a while:",
		Never:     "Never share this code; we will never ask you for it.",
		Units:     [3][2]string{{"second", "seconds"}, {"minute", "minutes"}, {"hour", "hours"}},
		Unknown:   "an unknown address",
		TimeStyle: "15:04 MST, 2 Jan 2006",
	},
	"de": {
		Subject:   "Ihr Anmeldecode für %s",
		Intro:     "Ihr Anmeldecode für %s lautet:",
		Validity:  "Er gilt einmal, für %s (bis %s).",
		Resource:  "Sie wollten öffnen: %s",
		Origin:    "Die Anfrage kam von %s.",
		OriginUA:  "Die Anfrage kam von %s, mit %s.",
		NotYou:    "Sie haben keinen Code angefordert? Jemand hat Ihre Adresse auf der Anmeldeseite eingegeben. Sie können diese E-Mail ignorieren: Ohne den Code kann sich niemand als Sie anmelden.",
		NotMeLink: "Wenn Sie ihn nicht angefordert haben, storniert dieser Link den Code und stoppt weitere Codes an Ihre Adresse für eine Weile:",
		Never:     "Geben Sie diesen Code nie weiter; wir werden Sie nie danach fragen.",
		Units:     [3][2]string{{"Sekunde", "Sekunden"}, {"Minute", "Minuten"}, {"Stunde", "Stunden"}},
		Unknown:   "einer unbekannten Adresse",
		TimeStyle: "15:04 MST, 2.1.2006",
	},
	"fr": {
		Subject:   "Votre code de connexion pour %s",
		Intro:     "Votre code de connexion pour %s est :",
		Validity:  "Il est valable une fois, pendant %s (jusqu'à %s).",
		Resource:  "Vous avez demandé à ouvrir : %s",
		Origin:    "La demande provient de %s.",
		OriginUA:  "La demande provient de %s, avec %s.",
		NotYou:    "Vous n'avez pas demandé ce code ? Quelqu'un a saisi votre adresse sur la page de connexion. Vous pouvez ignorer cet e-mail : sans le code, personne ne peut se connecter à votre place.",
		NotMeLink: "Si vous ne l'avez pas demandé, ce lien annule le code et suspend l'envoi de codes à votre adresse pendant un moment :",
		Never:     "Ne communiquez jamais ce code ; nous ne vous le demanderons jamais.",
		Units:     [3][2]string{{"seconde", "secondes"}, {"minute", "minutes"}, {"heure", "heures"}},
		Unknown:   "une adresse inconnue",
		TimeStyle: "15:04 MST, 2/1/2006",
	},
	"es": {
		Subject:   "Su código de acceso para %s",
		Intro:     "Su código de acceso para %s es:",
		Validity:  "Sirve una vez, durante %s (hasta las %s).",
		Resource:  "Pidió abrir: %s",
		Origin:    "La solicitud llegó desde %s.",
		OriginUA:  "La solicitud llegó desde %s, con %s.",
		NotYou:    "¿No pidió este código? Alguien escribió su dirección en la página de acceso. Puede ignorar este correo: sin el código nadie puede entrar en su nombre.",
		NotMeLink: "Si no lo pidió, este enlace anula el código y detiene los códigos a su dirección durante un tiempo:",
		Never:     "No comparta nunca este código; nunca se lo pediremos.",
		Units:     [3][2]string{{"segundo", "segundos"}, {"minuto", "minutos"}, {"hora", "horas"}},
		Unknown:   "una dirección desconocida",
		TimeStyle: "15:04 MST, 2/1/2006",
	},
}

// Languages lists the languages the code email is written in; English, the
// first, is the fallback.
func Languages() []string { return []string{"en", "de", "fr", "es"} }

// Localized is the code email's sentences in one language, ready to print.
type Localized struct {
	Subject, Intro, Validity, Resource, Origin, NotYou, NotYouLink, Never string
}

// catalogFor is the catalog of lang, or English's.
func catalogFor(lang string) catalog {
	if c, ok := catalogs[lang]; ok {
		return c
	}
	return catalogs["en"]
}

// Duration says d in words in language lang, in its largest whole unit
// ("30 minutes", "1 Stunde"); an unknown language gets English. Pages and
// emails say durations through it alone.
func Duration(lang string, d time.Duration) string { return catalogFor(lang).duration(d) }

func localize(lang string, d EmailData) Localized {
	c := catalogFor(lang)
	l := Localized{
		Subject:  fmt.Sprintf(c.Subject, d.Tenant),
		Intro:    fmt.Sprintf(c.Intro, d.Tenant),
		Validity: fmt.Sprintf(c.Validity, c.duration(d.ExpiresIn), d.ExpiresAt.UTC().Format(c.TimeStyle)),
		NotYou:   c.NotYou,
		Never:    c.Never,
	}
	if d.Resource != "" {
		l.Resource = fmt.Sprintf(c.Resource, d.Resource)
	}
	if d.NotMeLink != "" {
		l.NotYouLink = c.NotMeLink
	}
	ip := d.ClientIP
	if ip == "" {
		ip = c.Unknown
	}
	if d.UserAgent != "" {
		l.Origin = fmt.Sprintf(c.OriginUA, ip, d.UserAgent)
	} else {
		l.Origin = fmt.Sprintf(c.Origin, ip)
	}
	return l
}

// duration says d in the largest whole unit.
func (c catalog) duration(d time.Duration) string {
	n, unit := int((d+time.Second-1)/time.Second), 0
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int(d/time.Hour), 2
	case d >= time.Minute && d%time.Minute == 0:
		n, unit = int(d/time.Minute), 1
	}
	if n == 1 {
		return "1 " + c.Units[unit][0]
	}
	return fmt.Sprintf("%d %s", n, c.Units[unit][1])
}
