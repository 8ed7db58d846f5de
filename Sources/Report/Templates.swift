import Mustache

/// Why a report could not be written.
public enum ReportError: Error, CustomStringConvertible {
    /// A built-in template did not parse (a bug in Rein, not in the input).
    case template(name: String, message: String)
    /// The store has no run with this id.
    case runNotFound(id: Int64, store: String)

    public var description: String {
        switch self {
        case .template(let name, let message): "report template '\(name)' failed: \(message)"
        case .runNotFound(let id, let store): "\(store) has no run \(id)"
        }
    }
}

/// The Mustache templates of the report. `{{x}}` escapes `&`, `<`, `>`, `"` and `'`; only the
/// SVG and HTML the templates themselves produced are inserted raw (`{{{x}}}`). Sections go over
/// lists and every view-model field is non-optional, so no lookup climbs to an enclosing context.
enum Templates {
    static let sources: [String: String] = [
        "svg-element": """
            <{{tag}}{{#attributes}} {{name}}="{{value}}"{{/attributes}}>{{#tooltip}}<title>{{.}}</title>{{/tooltip}}{{text}}\
            {{#children}}{{>svg-element}}{{/children}}</{{tag}}>
            """,
        "page": """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="rein report">
            <title>{{title}}</title>
            <style>
            {{>style}}
            </style>
            </head>
            <body>
            <main>
            <header>
            <h1>{{title}}</h1>
            {{#subtitle}}<p class="meta">{{.}}</p>
            {{/subtitle}}
            </header>
            {{#comparisons}}{{>comparison}}{{/comparisons}}
            {{#runs}}{{>run}}{{/runs}}
            {{#notes}}<p class="note">{{.}}</p>
            {{/notes}}
            </main>
            </body>
            </html>

            """,
        "run": """
            <section class="run" id="run-{{id}}">
            {{#showHeading}}<h2>Run {{id}}: {{name}}</h2>{{/showHeading}}
            <div class="scroll"><table class="facts">
            {{#facts}}<tr><th>{{key}}</th><td>{{value}}</td></tr>
            {{/facts}}
            </table></div>
            <h3>Stages</h3>
            {{#hasStages}}
            <div class="scroll"><table class="stages">
            <thead><tr><th>stage</th><th>kind</th><th>status</th><th class="num">duration</th><th class="num">steps</th><th>final metrics</th></tr></thead>
            <tbody>
            {{#stages}}<tr><td><a href="#{{anchor}}">{{key}}</a></td><td>{{kind}}</td><td class="status-{{statusClass}}">{{status}}</td><td class="num">{{duration}}</td><td class="num">{{steps}}</td><td class="metrics">{{summary}}</td></tr>
            {{/stages}}
            </tbody>
            </table></div>
            {{/hasStages}}
            {{^hasStages}}<p class="note">No stages recorded yet.</p>{{/hasStages}}
            {{#stages}}
            <section class="stage" id="{{anchor}}">
            <h3>Stage {{key}} <span class="kind">({{kind}})</span></h3>
            <p class="meta">{{status}} · {{duration}} · {{steps}} steps</p>
            {{#hasCharts}}<div class="charts">
            {{#charts}}<figure>{{{.}}}</figure>
            {{/charts}}
            </div>{{/hasCharts}}
            {{#hasMetrics}}<h4>Final metrics</h4>
            <div class="scroll"><table class="metric-table"><thead><tr><th>metric</th><th class="num">value</th><th class="num">at step</th></tr></thead><tbody>
            {{#metrics}}<tr><td>{{name}}</td><td class="num" data-value="{{exact}}">{{value}}</td><td class="num">{{step}}</td></tr>
            {{/metrics}}
            </tbody></table></div>{{/hasMetrics}}
            {{#rollouts}}<h4>Rollouts at step {{step}} ({{count}} there): highest and lowest reward</h4>
            <div class="scroll"><table class="rollouts"><thead><tr><th>rank</th><th class="num">reward</th><th class="num">score</th><th class="num">KL</th><th class="num">tokens</th><th>stop</th><th>prompt</th><th>response</th></tr></thead><tbody>
            {{#rows}}<tr><td>{{rank}}</td><td class="num">{{reward}}</td><td class="num">{{score}}</td><td class="num">{{kl}}</td><td class="num">{{tokens}}</td><td>{{stop}}</td><td><div class="text">{{prompt}}</div></td><td><div class="text">{{response}}</div></td></tr>
            {{/rows}}
            </tbody></table></div>{{/rollouts}}
            </section>
            {{/stages}}
            <details class="recipe" open><summary>Recipe</summary><pre>{{recipe}}</pre></details>
            </section>

            """,
        "comparison": """
            <section class="comparison">
            <div class="scroll"><table class="facts">
            {{#facts}}<tr><th>{{key}}</th><td>{{value}}</td></tr>
            {{/facts}}
            </table></div>
            <h2 id="policies">Policies</h2>
            <div class="scroll"><table class="policies"><thead><tr><th>policy</th><th>source</th><th class="num">mean length</th><th class="num">KL</th><th class="num">perplexity before</th><th class="num">perplexity after</th></tr></thead><tbody>
            {{#policies}}<tr><td>{{name}}</td><td>{{source}}</td><td class="num">{{meanLength}}</td><td class="num">{{kl}}</td><td class="num">{{perplexityBefore}}</td><td class="num">{{perplexityAfter}}</td></tr>
            {{/policies}}
            </tbody></table></div>
            <div class="charts">{{#policyCharts}}<figure>{{{.}}}</figure>{{/policyCharts}}</div>
            <h2 id="win-rates">Win rates</h2>
            {{^judges}}<p class="note">No pairs were judged.</p>{{/judges}}
            {{#judges}}<h3>Judge {{judge}}</h3>
            <div class="charts">{{#charts}}<figure>{{{.}}}</figure>{{/charts}}</div>
            <div class="scroll"><table class="pairs"><thead><tr><th>A</th><th>B</th><th class="num">n</th><th class="num">wins</th><th class="num">losses</th><th class="num">ties</th><th class="num">failures</th><th class="num">win rate [95%]</th><th class="num">without ties</th><th class="num">sign test p</th><th class="num">mean difference</th><th class="num">length-controlled</th><th class="num">position bias</th><th class="num">prompts needed</th></tr></thead><tbody>
            {{#pairs}}<tr><td>{{a}}</td><td>{{b}}</td><td class="num">{{n}}</td><td class="num">{{wins}}</td><td class="num">{{losses}}</td><td class="num">{{ties}}</td><td class="num">{{failures}}</td><td class="num">{{winRate}}</td><td class="num">{{noTie}}</td><td class="num">{{signTestP}}</td><td class="num">{{meanDifference}}</td><td class="num">{{lengthControlled}}</td><td class="num">{{positionBias}}</td><td class="num">{{promptsNeeded}}</td></tr>
            {{/pairs}}
            </tbody></table></div>
            {{#rankingChart}}<h4>Bradley-Terry ranking ({{judge}})</h4>
            <div class="charts"><figure>{{{svg}}}</figure></div>
            <div class="scroll"><table class="ranking"><thead><tr><th>policy</th><th class="num">rating</th><th class="num">interval</th><th class="num">rank</th></tr></thead><tbody>
            {{#rows}}<tr><td>{{policy}}</td><td class="num">{{rating}}</td><td class="num">{{interval}}</td><td class="num">{{rank}}</td></tr>
            {{/rows}}
            </tbody></table></div>{{/rankingChart}}
            {{/judges}}
            {{#frontier}}<h2 id="frontier">Reward and KL</h2>
            <div class="charts">{{#charts}}<figure>{{{.}}}</figure>{{/charts}}</div>
            <div class="scroll"><table class="frontier"><thead><tr><th>series</th><th>checkpoint</th><th class="num">KL</th><th class="num">√KL</th><th class="num">gold</th><th class="num">proxy</th><th>Pareto</th></tr></thead><tbody>
            {{#rows}}<tr><td>{{series}}</td><td>{{label}}</td><td class="num">{{kl}}</td><td class="num">{{sqrtKL}}</td><td class="num">{{gold}}</td><td class="num">{{proxy}}</td><td>{{pareto}}</td></tr>
            {{/rows}}
            </tbody></table></div>{{/frontier}}
            {{#samples}}<h2 id="samples">Sample responses</h2>
            <div class="scroll"><table class="samples"><thead><tr><th>prompt</th>{{#columns}}<th>{{.}}</th>{{/columns}}</tr></thead><tbody>
            {{#rows}}<tr><td><div class="text">{{prompt}}</div></td>{{#cells}}<td><div class="text">{{text}}</div>{{#score}}<div class="score">score {{.}}</div>{{/score}}</td>{{/cells}}</tr>
            {{/rows}}
            </tbody></table></div>{{/samples}}
            </section>

            """,
        "style": """
            :root { color-scheme: light; }
            body { margin: 0; background: #fff; color: #1a1a1a; font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
            main { max-width: 1240px; margin: 0 auto; padding: 16px 20px 40px; }
            h1 { font-size: 22px; margin: 4px 0; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
            h3 { font-size: 15px; margin: 20px 0 6px; } h4 { font-size: 14px; margin: 14px 0 6px; }
            .meta, .note { color: #555; margin: 2px 0 8px; } .kind { color: #666; font-weight: normal; }
            table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
            th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 8px; text-align: left; vertical-align: top; }
            thead th { border-bottom: 1px solid #999; background: #f6f6f6; }
            .facts th { background: none; color: #555; font-weight: normal; }
            td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
            td.num { white-space: nowrap; }
            td.metrics { color: #333; max-width: 640px; }
            .status-failed { color: #b00020; } .status-running, .status-interrupted { color: #8a5a00; }
            .charts { display: flex; flex-wrap: wrap; gap: 12px 20px; }
            figure { margin: 0; }
            svg.chart { display: block; max-width: 100%; height: auto; font-size: 11px; font-family: inherit; }
            svg .chart-title { font-size: 13px; font-weight: bold; fill: #1a1a1a; }
            svg .grid { stroke: #ececec; } svg .axis, svg .tick { stroke: #777; }
            svg .tick-label, svg .row-note, svg .point-label { fill: #444; } svg .axis-label { fill: #333; }
            svg .row-label { fill: #1a1a1a; } svg .empty { fill: #888; }
            svg .reference { stroke: #b00020; stroke-width: 1.2; stroke-dasharray: 4 3; }
            .scroll { max-width: 100%; overflow-x: auto; }
            .facts td, table.policies td { overflow-wrap: anywhere; }
            table.pairs td, table.frontier td, table.ranking td { white-space: nowrap; }
            figure { max-width: 100%; }
            table.samples, table.rollouts { width: 100%; table-layout: fixed; }
            table.rollouts th:nth-child(-n+6) { width: 5.5em; }
            div.text { max-height: 14em; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
            .score { color: #555; font-size: 12px; margin-top: 2px; }
            details.recipe pre { max-height: 28em; overflow: auto; background: #f7f7f7; padding: 8px; font-size: 12px; white-space: pre-wrap; }
            a { color: #0b57a4; }
            @media print {
              main { max-width: none; padding: 0; }
              div.text, details.recipe pre { max-height: none; overflow: visible; }
              figure, tr { break-inside: avoid; }
            }
            """,
    ]

    /// The parsed templates.
    static let library: Result<MustacheLibrary, ReportError> = {
        var library = MustacheLibrary()
        for (name, source) in sources {
            do { try library.register(source, named: name) } catch {
                return .failure(.template(name: name, message: "\(error)"))
            }
        }
        return .success(library)
    }()

    /// `object` rendered with template `name`.
    static func render(_ object: Any, with name: String) throws -> String {
        let library = try library.get()
        guard let text = library.render(object, withTemplate: name) else {
            throw ReportError.template(name: name, message: "no such template")
        }
        return text
    }
}
