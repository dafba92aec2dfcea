import ts from 'typescript';
import { REPO_ROOT } from '../../infra/functions.ts';

/** One AWS SDK operation that code can reach: a command class, or lib-storage's `Upload`. */
export interface SdkOperation {
  /** `@aws-sdk/lib-dynamodb`, `@aws-sdk/client-s3`, … */
  readonly module: string;
  /** `GetCommand`, `PutObjectCommand`, `Upload`, … */
  readonly name: string;
}

/**
 * Names an `@aws-sdk/client-*` package exports that send nothing by themselves: the bare clients
 * (`S3Client`; their `send` sends a command, counted where the command is built), exceptions,
 * and helpers. Anything else from a client package is an aggregated client (`S3`, whose methods
 * send operations directly) or a paginator/waiter, which this analysis does not map: it reports
 * those as `module#name` so that a test fails until the mapping is extended.
 */
const NEUTRAL_SDK_EXPORT = /(Client|Exception|ServiceException|Command)$/;

/**
 * Finds the AWS SDK operations that each entry file's code can reach, by reachability over the
 * TypeScript program rather than over files: starting at the entry module's top-level code, it
 * follows every identifier the code uses to the declaration it resolves to (functions, methods,
 * class fields, variables, across modules), and records each `new XxxCommand(…)` or `new Upload(…)`
 * of an `@aws-sdk/*` package on the way. So a function that imports a class gets the commands of
 * the methods it calls, not of every method of the class.
 *
 * Conservative where dispatch is dynamic: a call through an interface member also reaches the
 * project's class members of that name; a method reaches the overrides in subclasses; a class
 * that extends a library class (a Node stream) has all its methods reached, since the library
 * calls them. SDK uses that bypass command classes (an aggregated client such as `S3`, a
 * paginator, a waiter) are reported by name, so that a caller's mapping fails on them.
 *
 * Which package a name comes from is read from the import (through re-exports); the packages'
 * own declarations are never loaded, which keeps a run to a few seconds.
 */
export class SdkUsageAnalyzer {
  private readonly program: ts.Program;
  private readonly checker: ts.TypeChecker;
  /** Class members of the project by name: targets of calls through interfaces and base classes. */
  private readonly classMembersByName = new Map<string, ts.ClassElement[]>();

  constructor(entries: readonly string[]) {
    const configFile = ts.findConfigFile(REPO_ROOT, ts.sys.fileExists, 'tsconfig.json');
    if (!configFile) throw new Error('tsconfig.json not found');
    const { config } = ts.readConfigFile(configFile, ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, REPO_ROOT);
    // Declarations of packages are replaced by empty modules: which package an imported name
    // comes from is read from the import itself, and loading the SDK's types would take seconds.
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (fileName, languageVersion, ...rest) =>
      fileName.includes('/node_modules/') && !fileName.includes('/node_modules/typescript/lib/')
        ? ts.createSourceFile(fileName, 'export {};', languageVersion)
        : getSourceFile(fileName, languageVersion, ...rest);
    this.program = ts.createProgram({ rootNames: [...entries], options: { ...options, noEmit: true }, host });
    this.checker = this.program.getTypeChecker();
    const index = (node: ts.Node): void => {
      if (ts.isClassLike(node)) {
        for (const member of node.members) {
          const name = member.name && ts.isIdentifier(member.name) ? member.name.text : undefined;
          if (name) this.classMembersByName.set(name, [...(this.classMembersByName.get(name) ?? []), member]);
        }
      }
      node.forEachChild(index);
    };
    for (const file of this.program.getSourceFiles()) if (isProjectFile(file)) file.forEachChild(index);
  }

  /**
   * The SDK operations reachable from the module code of `entries` (one walk for all of them), as
   * `module#name`, sorted.
   */
  operationsOf(...entries: string[]): string[] {
    const entryFiles = new Set(
      entries.map((entry) => {
        const entryFile = this.program.getSourceFile(entry);
        if (!entryFile) throw new Error(`${entry} is not part of the program`);
        return entryFile;
      }),
    );
    const found = new Set<string>();
    const visited = new Set<ts.Node>();
    const visitedFiles = new Set<ts.SourceFile>();
    const queue: ts.Node[] = [];
    const enqueue = (node: ts.Node) => {
      if (!visited.has(node)) {
        visited.add(node);
        queue.push(node);
      }
    };

    const reachFile = (file: ts.SourceFile) => {
      if (visitedFiles.has(file)) return;
      visitedFiles.add(file);
      // A module's top-level code runs when it is imported; the bodies of its functions do not.
      for (const statement of file.statements) {
        if (entryFiles.has(file) || ts.isExpressionStatement(statement)) enqueue(statement);
        else if (ts.isVariableStatement(statement)) {
          for (const declaration of statement.declarationList.declarations) {
            const init = declaration.initializer;
            if (init && !ts.isArrowFunction(init) && !ts.isFunctionExpression(init)) enqueue(init);
          }
        }
      }
    };

    const reachDeclaration = (declaration: ts.Declaration) => {
      const file = declaration.getSourceFile();
      if (!isProjectFile(file)) return;
      reachFile(file);
      if (ts.isClassDeclaration(declaration) || ts.isClassExpression(declaration)) {
        this.reachClass(declaration, enqueue);
      } else if (ts.isMethodSignature(declaration) || ts.isPropertySignature(declaration)) {
        // A call through an interface: any class member of that name may answer it.
        const name = ts.isIdentifier(declaration.name) ? declaration.name.text : undefined;
        for (const member of name ? (this.classMembersByName.get(name) ?? []) : []) enqueue(member);
      } else {
        enqueue(declaration);
        if (ts.isMethodDeclaration(declaration)) this.reachOverrides(declaration, enqueue);
      }
    };

    for (const entryFile of entryFiles) reachFile(entryFile);
    while (queue.length > 0) {
      const node = queue.shift() as ts.Node;
      const walk = (child: ts.Node): void => {
        if (runsNothing(child)) return;
        if (ts.isNewExpression(child)) {
          const operation = this.sdkOperation(child.expression);
          if (operation) found.add(`${operation.module}#${operation.name}`);
        }
        if (ts.isIdentifier(child)) {
          const unmapped = this.unmappedSdkUse(child);
          if (unmapped) found.add(unmapped);
        }
        if (ts.isIdentifier(child) || ts.isPrivateIdentifier(child)) {
          for (const declaration of this.declarationsOf(child)) reachDeclaration(declaration);
        }
        child.forEachChild(walk);
      };
      if (runsNothing(node)) continue;
      if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) this.reachClass(node, enqueue);
      else node.forEachChild(walk);
    }
    return [...found].sort();
  }

  /** The declarations an identifier refers to, imports followed to what they import. */
  private declarationsOf(identifier: ts.Identifier | ts.PrivateIdentifier): ts.Declaration[] {
    const symbols: ts.Symbol[] = [];
    const symbol = this.checker.getSymbolAtLocation(identifier);
    if (symbol) symbols.push(symbol);
    if (ts.isShorthandPropertyAssignment(identifier.parent)) {
      const value = this.checker.getShorthandAssignmentValueSymbol(identifier.parent);
      if (value) symbols.push(value);
    }
    return symbols.flatMap((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? this.checker.getAliasedSymbol(s) : s;
      return target.declarations ?? [];
    });
  }

  /** A class runs its field initializers, constructor and static blocks; its methods only when called. */
  private reachClass(node: ts.ClassLikeDeclaration, enqueue: (node: ts.Node) => void): void {
    for (const clause of node.heritageClauses ?? [])
      for (const type of clause.types) enqueue(type.expression);
    const extendsLibrary = (node.heritageClauses ?? []).some(
      (clause) =>
        clause.token === ts.SyntaxKind.ExtendsKeyword &&
        clause.types.some((type) =>
          this.declarationsOf(leftmostIdentifier(type.expression)).some(
            (d) => !isProjectFile(d.getSourceFile()),
          ),
        ),
    );
    for (const member of node.members) {
      const runsOnCreation =
        ts.isConstructorDeclaration(member) ||
        ts.isPropertyDeclaration(member) ||
        ts.isClassStaticBlockDeclaration(member);
      if (runsOnCreation || extendsLibrary) enqueue(member);
    }
  }

  /** Overrides of `method` in the project's subclasses of its class. */
  private reachOverrides(method: ts.MethodDeclaration, enqueue: (node: ts.Node) => void): void {
    const owner = method.parent;
    if (!ts.isClassLike(owner) || !ts.isIdentifier(method.name)) return;
    const ownerType = this.checker.getTypeAtLocation(owner);
    for (const member of this.classMembersByName.get(method.name.text) ?? []) {
      const subclass = member.parent;
      if (member === method || !ts.isClassLike(subclass)) continue;
      if (this.inheritsFrom(this.checker.getTypeAtLocation(subclass), ownerType)) enqueue(member);
    }
  }

  private inheritsFrom(type: ts.Type, base: ts.Type): boolean {
    if (!type.isClassOrInterface()) return false;
    return (this.checker.getBaseTypes(type) ?? []).some(
      (parent) => parent.symbol === base.symbol || this.inheritsFrom(parent, base),
    );
  }

  /** `new X(…)` where X is an `@aws-sdk/*` command class or lib-storage's `Upload`. */
  private sdkOperation(expression: ts.Expression): SdkOperation | undefined {
    const imported = this.sdkImportOf(expression);
    if (!imported) return undefined;
    const { module, name } = imported;
    return name.endsWith('Command') || (module === '@aws-sdk/lib-storage' && name === 'Upload')
      ? imported
      : undefined;
  }

  /**
   * The SDK export an expression names (`GetCommand`, `sdk.GetCommand`), through imports and
   * the project's own re-exports.
   */
  private sdkImportOf(expression: ts.Expression): SdkOperation | undefined {
    if (ts.isPropertyAccessExpression(expression) && ts.isIdentifier(expression.expression)) {
      const namespace = this.sdkImportOf(expression.expression);
      return namespace?.name === '*' ? { module: namespace.module, name: expression.name.text } : undefined;
    }
    if (!ts.isIdentifier(expression)) return undefined;
    let symbol = this.checker.getSymbolAtLocation(expression);
    const seen = new Set<ts.Symbol>();
    while (symbol && symbol.flags & ts.SymbolFlags.Alias && !seen.has(symbol)) {
      seen.add(symbol);
      for (const declaration of symbol.declarations ?? []) {
        const specifier = moduleSpecifierOf(declaration);
        if (!specifier?.startsWith('@aws-sdk/')) continue;
        const module = specifier.split('/').slice(0, 2).join('/');
        if (ts.isNamespaceImport(declaration)) return { module, name: '*' };
        const name =
          ts.isImportSpecifier(declaration) || ts.isExportSpecifier(declaration)
            ? (declaration.propertyName ?? declaration.name).text
            : symbol.name;
        return { module, name };
      }
      symbol = this.checker.getImmediateAliasedSymbol(symbol);
    }
    return undefined;
  }

  /**
   * An SDK export that sends requests in a way the command table cannot see: an aggregated client
   * (`new S3()`, whose methods call operations), a paginator or a waiter.
   */
  private unmappedSdkUse(identifier: ts.Identifier): string | undefined {
    const imported = this.sdkImportOf(identifier);
    if (!imported || imported.name === '*') return undefined;
    const { module, name } = imported;
    const unmapped =
      /^(paginate|waitFor|waitUntil)/.test(name) ||
      (module.startsWith('@aws-sdk/client-') && !NEUTRAL_SDK_EXPORT.test(name) && /^[A-Z]/.test(name));
    return unmapped ? `${module}#${name}` : undefined;
  }
}

/** Types, interfaces, imports and re-exports: code that names things but runs nothing. */
function runsNothing(node: ts.Node): boolean {
  return (
    ts.isTypeNode(node) ||
    ts.isInterfaceDeclaration(node) ||
    ts.isTypeAliasDeclaration(node) ||
    ts.isImportDeclaration(node) ||
    ts.isExportDeclaration(node) ||
    ts.isImportEqualsDeclaration(node)
  );
}

function leftmostIdentifier(expression: ts.Expression): ts.Identifier {
  let current = expression;
  while (ts.isPropertyAccessExpression(current)) current = current.expression;
  if (!ts.isIdentifier(current)) throw new Error(`unexpected heritage expression ${current.getText()}`);
  return current;
}

function isProjectFile(file: ts.SourceFile): boolean {
  return !file.isDeclarationFile && !file.fileName.includes('/node_modules/');
}

/** The module an import or re-export declaration names (`'@aws-sdk/lib-dynamodb'`). */
function moduleSpecifierOf(declaration: ts.Declaration): string | undefined {
  let node: ts.Node | undefined = declaration;
  while (node && !ts.isImportDeclaration(node) && !ts.isExportDeclaration(node)) {
    if (ts.isSourceFile(node)) return undefined;
    node = node.parent;
  }
  const specifier = node?.moduleSpecifier;
  return specifier && ts.isStringLiteral(specifier) ? specifier.text : undefined;
}
